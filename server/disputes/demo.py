"""The demo's dispute kinds and a few disputes with their mediation steps, in several states.

Called once from server/admin/demo.py (`load`, with the full demo). Steps are written by the server
in the mediators' names, in order; their ``at`` says when each happened.
"""

from __future__ import annotations

import secrets
import uuid
from typing import Any

from shared.hlc import format_ms
from shared.records import uuid7

from ..clock import server_clock
from ..models import User
from ..sync import apply

NAMESPACE = uuid.UUID("2f4b9c1e-7d3a-4e61-8b0f-5a9d6c3e1b27")
KINDS = [  # code, 中文, English, take-up hours
    ("neighbours", "邻里纠纷", "Neighbours", 24),
    ("family", "婚姻家庭纠纷", "Family", 24),
    ("labour", "劳资纠纷", "Labour and wages", 12),
    ("property", "物业纠纷", "Property management", 48),
    ("rent", "房屋租赁纠纷", "Rent", 24),
]
HOUR = 3_600_000
# worker, grid, kind, parties, place, description, hours ago reported, steps: (action, hours ago, extra values)
DISPUTES: list[tuple[str, str, str, list[dict[str, Any]], str, str, int, list[tuple[str, int, dict]]]] = [
    ("worker1", "G-0101", "neighbours",
     [{"name": "周建国", "phone": "13800135678", "role": "申请人"}, {"name": "吴海燕", "phone": "13912348765", "role": "被申请人"}],
     "东湖村8号", "楼上卫生间漏水，楼下天花板发霉，双方多次争吵", 30, []),
    ("worker1", "G-0101", "rent",
     [{"name": "郑小龙", "phone": "15012345678", "role": "租客"}, {"name": "孙美玲", "phone": "13698765432", "role": "房东"}],
     "东湖村12号", "退租押金3000元未退还", 50,
     [("accept", 46, {"note": "已联系双方"}),
      ("session", 40, {"mediators": ["张伟", "社区调委会 何主任"], "note": "双方同意按合同核对房屋损坏"})]),
    ("worker2", "G-0101", "labour",
     [{"name": "马志强", "phone": "18612345678", "role": "工人"}, {"name": "东湖装修队", "phone": "075588886666", "role": "雇主"}],
     "东湖路工地", "拖欠两个月工资共1.2万元", 120,
     [("accept", 118, {}), ("session", 100, {"mediators": ["李娜"], "note": "雇主承认欠薪"}),
      ("outcome", 96, {"outcome": "settled", "note": "雇主当场支付6000元，余款月底结清"}),
      ("follow_up", 20, {"note": "余款已结清，工人满意"})]),
    ("worker3", "G-0201", "property",
     [{"name": "钱德明", "phone": "13322223333", "role": "业主"}, {"name": "青石物业", "phone": None, "role": "物业公司"}],
     "青石花园3栋", "电梯长期故障，业主拒交物业费", 200,
     [("accept", 190, {}), ("session", 180, {"mediators": ["王强"], "note": "物业承诺一周内维修"}),
      ("outcome", 170, {"outcome": "referred", "referred_to": "区住建局", "note": "涉及维修基金使用，移交住建局"})]),
    ("worker3", "G-0201", "family",
     [{"name": "冯丽", "phone": "13544445555", "role": "申请人"}, {"name": "冯刚", "phone": "13566667777", "role": "被申请人"}],
     "青石村22号", "兄妹因老宅继承发生争执", 6, [("accept", 5, {"note": "约定明日上门调解"})]),
]


def _id() -> str:
    return uuid7(server_clock().physical_ms(), secrets.token_bytes(10))


def sample_changes(users: dict[str, User]) -> tuple[list, list]:
    """The demo's dispute kinds (reference data) and its disputes with their steps, as server-stamped changes."""
    kinds = [apply.stamp("dispute_kind", str(uuid.uuid5(NAMESPACE, code)),
                         {"code": code, "name": name, "name_en": name_en, "take_up_hours": hours})
             for code, name, name_en, hours in KINDS]
    now = server_clock().physical_ms()
    changes = []
    for username, grid, kind, parties, place, text, ago, steps in DISPUTES:
        dispute_id = _id()
        worker = users[username].id
        changes.append(apply.stamp("dispute", dispute_id, {
            "grid": grid, "dispute_kind": kind, "parties": parties, "place": place, "description": text,
            "reporter": worker, "reported_at": format_ms(now - ago * HOUR)}))
        for action, hours, extra in steps:
            changes.append(apply.stamp("dispute_action", _id(), {
                "dispute": dispute_id, "action": action, "actor": worker, "at": format_ms(now - hours * HOUR),
                **extra}, bucket=f"grid:{grid}"))
    return kinds, changes


def load(users: dict[str, User]) -> None:
    """Write the demo's dispute kinds, then its disputes and steps."""
    kinds, changes = sample_changes(users)
    apply.write_as_server(kinds)
    apply.write_as_server(changes)
