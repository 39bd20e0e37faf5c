"""Sync: tablets push changes and pull change-only pages (views, service), applied in one transaction
(apply) over the feed (feed), read fast from the wire (wire)."""
