from django.contrib import admin
from django.urls import include, path, re_path

from studio.accounts.admin.prices import prices_moved
from studio.core.views import view_on_site
from studio.generation.admin import studio_health, usage_report

urlpatterns = [
    # Staff only (admin_view), and the permission to view jobs (the view checks it).
    path("admin/usage/", admin.site.admin_view(usage_report), name="admin-usage"),
    path("admin/health/", admin.site.admin_view(studio_health), name="admin-health"),
    # Before the admin's own, which it stands in for (staff only, as there).
    path("admin/r/<int:content_type_id>/<path:object_id>/", admin.site.admin_view(view_on_site)),
    # Prices moved from the generation app to accounts: an admin's bookmark still arrives.
    re_path(
        r"^admin/generation/modelprice/(?P<rest>.*)$",
        admin.site.admin_view(prices_moved),
    ),
    path("admin/", admin.site.urls),
    path("accounts/", include("studio.accounts.urls")),
    path("", include("studio.core.urls")),
    path("", include("studio.generation.urls")),
    path("", include("studio.gallery.urls")),
    path("", include("studio.notifications.urls")),
    path("", include("studio.api.urls")),
]
