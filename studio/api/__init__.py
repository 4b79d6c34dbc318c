"""The studio's JSON API (`/api/v1/`) and the personal access tokens it is used with."""
