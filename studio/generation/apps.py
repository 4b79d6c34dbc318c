from django.apps import AppConfig


class GenerationConfig(AppConfig):
    name = "studio.generation"
    label = "generation"
    verbose_name = "Generation"

    def ready(self) -> None:
        from django_q.signals import post_spawn

        # A worker that starts (a fresh or restarted cluster) makes sure a dispatcher runs,
        # so queued jobs move at once rather than at the next reconcile.
        post_spawn.connect(_kick_on_spawn, dispatch_uid="studio-kick-dispatcher")


def _kick_on_spawn(sender: object, **kwargs: object) -> None:
    from studio.dashscope.client import tls_context
    from studio.generation.models import Job
    from studio.generation.tasks import kick

    tls_context()  # loaded now, not when the first job is waiting for this worker
    if Job.objects.filter(status__in=Job.OPEN).exists():
        kick()
