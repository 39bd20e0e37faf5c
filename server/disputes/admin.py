"""The admin's page of dispute kinds and the hours within which a dispute of each must be taken up.

A plain reference page like categories (server/admin/console.py, `ReferenceView`): the records are
written through the server's write path, so tablets pull the kinds and their hours and tell an
overdue dispute offline. Registered with one line in console.init_app.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from ..admin.console import ReferenceView
from .forms import DisputeKindForm


class DisputeKindView(ReferenceView):
    """Dispute kinds (邻里, 家庭, 劳资 …) with their take-up hours."""

    kind = "dispute_kind"
    form_class = DisputeKindForm
    columns = [("code", _l("Code")), ("name", _l("Name")), ("name_en", _l("Name (English)")),
               ("take_up_hours", _l("Take up within (hours)"))]
