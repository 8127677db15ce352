"""The console: a stateless web server that shows and steers SyncJobs under each user's
own Kubernetes rights (Argo Workflows' client auth mode, Headlamp's per-user RBAC).

A request carries the user's bearer token (a header, or the HttpOnly session cookie a
browser gets for it). TokenReview says who it is; SubjectAccessReview says what that
person may read; every write is sent to the API server with the user's own token, so
RBAC, admission and the audit stamp name the real person. One watch per kind inside
the server feeds every browser over Server-Sent Events.
"""
