from django.apps import AppConfig


class SourcesConfig(AppConfig):
    name = "sources"
    verbose_name = "Sources"

    def ready(self) -> None:
        from core.metrics import state_collector_register
        from sources.metrics import SourceStates

        state_collector_register(SourceStates())
