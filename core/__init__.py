"""The kernel below the apps: what every app needs and none owns.

The API's error shape and pagination, throttles and the client's address, links, the task
queue helpers, media and bundle storage (local or S3), ranged HTTP responses, CSV cells. It
imports Django and third-party packages only — never an app of this project — so the apps
(``accounts`` <- ``jobs`` <- ``exports``) can all build on it. A helper that two apps need
goes here; a helper that knows about users, organizations, jobs or exports belongs to that app.
"""
