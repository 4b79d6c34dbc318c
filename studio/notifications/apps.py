from django.apps import AppConfig


class NotificationsConfig(AppConfig):
    name = "studio.notifications"
    label = "notifications"
    verbose_name = "Notifications"
