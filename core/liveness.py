"""How often a worker shows it is alive: it touches its alive file every ALIVE_INTERVAL
seconds (prodrag.celery's bootstep), and `manage.py worker_health` allows three intervals."""

ALIVE_INTERVAL = 10
