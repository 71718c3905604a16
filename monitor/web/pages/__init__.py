"""The console's pages, one module per page (each exports ``ROUTES``); ``monitor.web.app``
assembles them. Shared machinery (session, roles, CSRF, templates) is in ``monitor.web.kit``."""
