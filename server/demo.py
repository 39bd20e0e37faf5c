"""The demo data set: one district, two streets, three communities, six grids, and people to use them.

Reference records get ids derived from their codes (UUIDv5), so loading the
demo twice, or on two servers, gives the same records.
"""

from __future__ import annotations

import os
import secrets
import uuid

from sqlalchemy import func, select

from shared.hlc import format_ms
from shared.records import uuid7

from . import accounts, store
from .clock import server_clock
from .db import db
from .models import Record, User

NAMESPACE = uuid.UUID("6f1c1a4e-2b1d-4f0e-9a51-6c7a1f0b9e21")

DISTRICT = "示范区"
GRIDS = [  # code, name, community, street
    ("G-0101", "东湖一网格", "东湖社区", "东湖街道"),
    ("G-0102", "东湖二网格", "东湖社区", "东湖街道"),
    ("G-0201", "青石一网格", "青石社区", "东湖街道"),
    ("G-0202", "青石二网格", "青石社区", "东湖街道"),
    ("G-0301", "西山一网格", "西山社区", "西山街道"),
    ("G-0302", "西山二网格", "西山社区", "西山街道"),
]
UNITS = [  # code, 中文, English
    ("comprehensive", "综合整治队", "Comprehensive rectification team"),
    ("fire", "消防", "Fire service"),
    ("city_management", "城管", "City management"),
    ("work_safety", "安监", "Work safety"),
    ("market", "市监", "Market supervision"),
    ("environment", "环水", "Environment and water"),
    ("traffic", "交通", "Traffic"),
    ("police", "公安", "Police"),
]
CATEGORIES = [  # code, 中文, English, default unit, deadline hours, micro, duplicate radius (m)
    ("fire_hazard", "消防隐患", "Fire hazard", "fire", 72, False, 50),
    ("ebike_charging", "电动车违规充电", "Illegal e-bike charging", "fire", 24, False, 30),
    ("blocked_escape", "消防通道堵塞", "Blocked escape route", "fire", 24, False, 30),
    ("illegal_wiring", "私拉乱接电线", "Illegal wiring", "fire", 48, False, 30),
    ("illegal_construction", "违法建设", "Illegal construction", "city_management", 168, False, 100),
    ("street_vendor", "占道经营", "Street vending on the road", "city_management", 24, True, 50),
    ("illegal_parking", "车辆乱停放", "Illegal parking", "city_management", 24, True, 30),
    ("posters", "乱张贴乱涂画", "Illegal posters", "city_management", 24, True, 30),
    ("garbage", "垃圾乱堆放", "Dumped garbage", "environment", 24, True, 50),
    ("sewage", "污水直排", "Sewage discharge", "environment", 72, False, 100),
    ("unlicensed_business", "无证经营", "Unlicensed business", "market", 168, False, 50),
    ("safety_hazard", "安全生产隐患", "Work safety hazard", "work_safety", 72, False, 50),
    ("traffic_hazard", "交通安全隐患", "Traffic hazard", "traffic", 72, False, 50),
    ("public_security", "治安隐患", "Public security risk", "police", 48, False, 50),
    ("dispute", "民事纠纷", "Civil dispute", "comprehensive", 168, False, 0),
]
CHECKLIST_ITEMS = [  # code, 中文, English, category suggested when it fails
    ("extinguisher", "配备有效灭火器", "Working fire extinguisher present", "fire_hazard"),
    ("escape_route", "疏散通道畅通", "Escape route clear", "blocked_escape"),
    ("ebike_indoor", "无电动车室内充电", "No e-bike charging indoors", "ebike_charging"),
    ("wiring", "电线无私拉乱接", "No illegal wiring", "illegal_wiring"),
    ("smoke_alarm", "安装烟感报警器", "Smoke alarm installed", "fire_hazard"),
    ("crowding", "无群租超员", "Not overcrowded", "public_security"),
]
PEOPLE = [  # username, name, role, grids, unit
    ("worker1", "张伟", "worker", ["G-0101"], None),
    ("worker2", "李娜", "worker", ["G-0101"], None),
    ("worker3", "王强", "worker", ["G-0201"], None),
    ("supervisor1", "陈静", "supervisor", [], None),
    ("unit1", "刘洋", "unit", [], "fire"),
    ("admin", "系统管理员", "admin", [], None),
]


def ref_id(kind: str, code: str) -> str:
    """The stable id of a demo reference record."""
    return str(uuid.uuid5(NAMESPACE, f"{kind}:{code}"))


def is_empty() -> bool:
    """Whether the store holds no users and no records."""
    return not db.session.scalar(select(func.count()).select_from(User)) and \
        not db.session.scalar(select(func.count()).select_from(Record))


def reference_changes() -> list:
    """The demo's grids, units, categories and checklist as server-stamped changes."""
    changes = []
    for code, name, community, street in GRIDS:
        changes.append(store.stamp("grid", ref_id("grid", code), {
            "code": code, "name": name, "type": "base", "community": community, "street": street,
            "district": DISTRICT}))
    for code, name, name_en in UNITS:
        changes.append(store.stamp("unit", ref_id("unit", code), {"code": code, "name": name, "name_en": name_en}))
    for code, name, name_en, unit, hours, micro, radius in CATEGORIES:
        changes.append(store.stamp("category", ref_id("category", code), {
            "code": code, "name": name, "name_en": name_en, "default_unit": unit, "deadline_hours": hours,
            "micro": micro, "duplicate_radius_m": radius}))
    changes.append(store.stamp("checklist", ref_id("checklist", "rental_house"), {
        "code": "rental_house", "name": "出租屋安全检查", "name_en": "Rental house safety check", "version": 1,
        "items": [{"code": c, "text": t, "text_en": e, "category": cat} for c, t, e, cat in CHECKLIST_ITEMS]}))
    return changes


def load(password: str | None = None) -> dict[str, str]:
    """Load the demo; returns {username: password}. Passwords are random unless given."""
    password = password or os.environ.get("GRIDPATROL_DEMO_PASSWORD")
    store.write_as_server(reference_changes())
    logins: dict[str, str] = {}
    users: dict[str, User] = {}
    for username, name, role, grids, unit in PEOPLE:
        secret = password or secrets.token_urlsafe(9)
        users[username] = accounts.create_user(username, secret, name=name, role=role, grids=grids, unit=unit)
        logins[username] = secret
    db.session.commit()
    store.write_as_server(sample_events(users))
    return logins


def sample_events(users: dict[str, User]) -> list:
    """A few events reported by the demo workers, so the pages have something to show."""
    samples = [
        ("worker1", "G-0101", "ebike_charging", "3栋楼道内电动车飞线充电", False, 22.5431, 114.0579),
        ("worker1", "G-0101", "garbage", "东湖路口垃圾堆放", False, 22.5436, 114.0590),
        ("worker2", "G-0101", "blocked_escape", "12号出租屋疏散通道被杂物堵塞", True, 22.5428, 114.0571),
        ("worker3", "G-0201", "illegal_construction", "青石村违建加层", False, 22.5502, 114.0651),
    ]
    clock = server_clock()
    changes = []
    for n, (username, grid, category, text, urgent, lat, lon) in enumerate(samples):
        now_ms = clock.physical_ms()
        changes.append(store.stamp("event", uuid7(now_ms, secrets.token_bytes(10)), {
            "grid": grid, "category": category, "description": text, "urgent": urgent, "micro": False,
            "location": {"lat": lat, "lon": lon, "accuracy_m": 8.0, "source": "gps"},
            "photos": [], "reporter": users[username].id, "reported_at": format_ms(now_ms - (n + 1) * 3_600_000)}))
    return changes
