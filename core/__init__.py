"""What every app uses and that knows no app: settings parsing (config), the metrics registry,
logs, tracing, the API's base (error shape, conflict), the LLM client, the worker's liveness
interval. Apps register what core reports about them (metric collectors) instead of core
importing them."""
