from django.urls import path

from studio.notifications import views

urlpatterns = [
    path("notifications/", views.notification_list, name="notifications"),
    path("notifications/bell", views.bell, name="notification-bell"),
    path("notifications/read", views.notifications_read, name="notifications-read"),
    path("notifications/settings/", views.notification_settings, name="notification-settings"),
    path(
        "notifications/<int:notification_id>/open",
        views.notification_open,
        name="notification-open",
    ),
]
