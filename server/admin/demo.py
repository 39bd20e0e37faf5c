"""The demo data set: one district, two streets, three communities, six grids, people to use them, a few
events, and rental houses with their checks and tenants.

Reference records get ids derived from their codes (UUIDv5), so loading the
demo twice, or on two servers, gives the same records.
"""

from __future__ import annotations

import secrets
import uuid

from sqlalchemy import func, select

from shared.hlc import format_ms
from shared.idcard import check_digit
from shared.records import uuid7

from .. import accounts
from ..clock import server_clock
from ..config import demo_password
from ..db import db
from ..models import Record, User
from ..patrols import demo as patrols_demo
from ..disputes import demo as dispute_demo
from ..sync import apply

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
CHECKLIST_ITEMS = [  # code, 中文, English, category suggested when it fails, the hazard in 中文 and English
    ("extinguisher", "配备有效灭火器", "Working fire extinguisher present", "fire_hazard",
     "未配备有效灭火器", "No working fire extinguisher"),
    ("escape_route", "疏散通道畅通", "Escape route clear", "blocked_escape", "疏散通道堵塞", "Escape route blocked"),
    ("ebike_indoor", "无电动车室内充电", "No e-bike charging indoors", "ebike_charging",
     "电动车在室内充电", "E-bike charging indoors"),
    ("wiring", "电线无私拉乱接", "No illegal wiring", "illegal_wiring", "电线私拉乱接", "Illegal wiring"),
    ("smoke_alarm", "安装烟感报警器", "Smoke alarm installed", "fire_hazard", "未安装烟感报警器", "No smoke alarm"),
    ("crowding", "无群租超员", "Not overcrowded", "public_security", "群租超员", "Overcrowded"),
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
        changes.append(apply.stamp("grid", ref_id("grid", code), {
            "code": code, "name": name, "type": "base", "community": community, "street": street,
            "district": DISTRICT}))
    for code, name, name_en in UNITS:
        changes.append(apply.stamp("unit", ref_id("unit", code), {"code": code, "name": name, "name_en": name_en}))
    for code, name, name_en, unit, hours, micro, radius in CATEGORIES:
        changes.append(apply.stamp("category", ref_id("category", code), {
            "code": code, "name": name, "name_en": name_en, "default_unit": unit, "deadline_hours": hours,
            "micro": micro, "duplicate_radius_m": radius}))
    changes.append(apply.stamp("checklist", ref_id("checklist", "rental_house"), {
        "code": "rental_house", "name": "出租屋安全检查", "name_en": "Rental house safety check", "version": 1,
        "items": [{"code": c, "text": t, "text_en": e, "category": cat, "hazard": h, "hazard_en": h_en}
                  for c, t, e, cat, h, h_en in CHECKLIST_ITEMS]}))
    return changes


def load(password: str | None = None, *, houses: bool = False) -> dict[str, str]:
    """Load the demo; returns {username: password}. Passwords are random unless given.

    ``houses`` adds the rental houses, their checks and tenants (`load_houses`), and the patrols (grid outlines,
    fixed points, tracks, plans: server/patrols/demo.py); ``flask demo load`` does. It is
    off by default because the sync tests pull the demo grids and compare what devices hold with the store, and
    tenants are served masked to workers (server/privacy.py).
    """
    password = password or demo_password()
    apply.write_as_server(reference_changes())
    logins: dict[str, str] = {}
    users: dict[str, User] = {}
    for username, name, role, grids, unit in PEOPLE:
        secret = password or secrets.token_urlsafe(9)
        users[username] = accounts.create_user(username, secret, name=name, role=role, grids=grids, unit=unit)
        logins[username] = secret
    db.session.commit()
    apply.write_as_server(sample_events(users))
    if houses:
        apply.write_as_server(sample_houses(users))
        patrols_demo.load(users)  # grid outlines, fixed points, a day of patrols, plans (server/patrols/demo.py)
        dispute_demo.load(users)  # dispute kinds, and disputes with their mediation steps (server/disputes/demo.py)
        from ..places.demo import load_places  # the key places ride with the houses: both are checked places

        load_places(users, ref_id)
    return logins


def load_houses() -> None:
    """Add the demo's rental houses, checks and tenants to a store that holds the demo users."""
    users = {u.username: u for u in db.session.scalars(select(User).where(User.username.in_(
        [username for username, *_rest in PEOPLE])))}
    apply.write_as_server(sample_houses(users))


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
        changes.append(apply.stamp("event", uuid7(now_ms, secrets.token_bytes(10)), {
            "grid": grid, "category": category, "description": text, "urgent": urgent, "micro": False,
            "location": {"lat": lat, "lon": lon, "accuracy_m": 8.0, "source": "gps"},
            "photos": [], "reporter": users[username].id, "reported_at": format_ms(now_ms - (n + 1) * 3_600_000)}))
    return changes


# Rental houses: grid, address, owner, building head, floors, rooms, risk grade, worker, then per check
# (days ago, residents seen, {failed item: note}), and tenants: (name, room, birth date, moved out).
HOUSES = [
    ("G-0101", "东湖村12号", "黄建国", "黄建国", 5, 14, "high", "worker2",
     [(40, 9, {"ebike_indoor": "一楼楼道两辆电动车充电"}),
      (3, 9, {"escape_route": "二楼通道堆放杂物", "wiring": "三楼私拉电线"})],
     [("周磊", "101", "19900312", None), ("吴芳", "102", "19951120", None), ("郑海", "201", "19880705", None),
      ("孙丽", "202", "20000101", None), ("马超", "301", "19920818", None), ("朱琳", "302", "19970228", None),
      ("胡斌", "401", "19850615", "2026-10-31")]),
    ("G-0101", "东湖村18号", "林秀英", "何志明", 4, 8, "medium", "worker1",
     [(12, 4, {})],
     [("高洁", "101", "19930407", None), ("罗勇", "102", "19890923", None), ("梁静", "201", "19960514", None),
      ("宋涛", "202", "19911130", None)]),
    ("G-0101", "东湖新村3栋", "谢宏", None, 7, 28, "low", "worker1",
     [(20, 2, {"smoke_alarm": "烟感已过期"})],
     [("唐敏", "502", "19980219", None), ("许刚", "601", "19870801", None)]),
    ("G-0102", "东湖路88号", "韩梅", "韩梅", 3, 6, "medium", "worker2",
     [(8, 5, {"extinguisher": "灭火器过期"})],
     [("冯雪", "101", "19940630", None), ("邓凯", "201", "19900110", None), ("曹阳", "301", "19990909", None),
      ("彭浩", "302", "19860321", None), ("曾丽", "303", "20010711", None)]),
    ("G-0201", "青石村5巷7号", "蒋伟", "蒋伟", 6, 20, "high", "worker3",
     [(30, 10, {"crowding": "一间住八人"}), (6, 12, {"crowding": "群租未整改", "ebike_indoor": None})],
     [("沈军", "101", "19830505", None), ("韦华", "102", "19920202", None), ("姚娜", "201", "19970303", None),
      ("卢鹏", "202", "19950404", None), ("汪洋", "301", "19910606", None), ("田甜", "302", "20020707", None),
      ("任杰", "401", "19880808", None), ("姜波", "402", "19930909", None), ("范琪", "501", "19961010", None),
      ("方圆", "502", "19941111", None), ("石磊", "601", "19841212", None)]),
    ("G-0201", "青石村9号", "金莉", None, 2, 4, "low", "worker3",
     [],
     [("邱实", "101", "19890115", None)]),
]
ADDRESS_CODE = "440304"  # the demo district's address code (a real one: 深圳市福田区)


def demo_id_number(birth: str, sequence: int) -> str:
    """A valid resident ID number (GB 11643) for demo people: address code, birth date, sequence, check digit."""
    first17 = f"{ADDRESS_CODE}{birth}{sequence % 1000:03d}"
    return first17 + check_digit(first17)


def sample_houses(users: dict[str, User]) -> list:
    """A few rental houses with checks (some items failed) and tenants, in the demo grids."""
    clock = server_clock()
    changes = []
    sequence = 11
    for grid, address, owner, head, floors, rooms, risk, worker, checks, tenants in HOUSES:
        now_ms = clock.physical_ms()
        house_id = uuid7(now_ms, secrets.token_bytes(10))
        bucket = f"grid:{grid}"
        changes.append(apply.stamp("rental_house", house_id, {
            "grid": grid, "address": address, "owner": owner, "owner_phone": "13800000000"[:-2] + f"{sequence:02d}",
            "building_head": head, "floors": floors, "rooms": rooms, "risk_grade": risk}))
        for days, seen, failed in checks:
            answers = [{"item": code, "result": "fail" if code in failed else "pass",
                        **({"note": failed[code]} if failed.get(code) else {})} for code, *_rest in CHECKLIST_ITEMS]
            changes.append(apply.stamp("house_check", uuid7(now_ms, secrets.token_bytes(10)), {
                "house": house_id, "worker": users[worker].id, "checked_at": format_ms(now_ms - days * 86_400_000),
                "checklist": "rental_house", "checklist_version": 1, "answers": answers, "photos": [],
                "residents_seen": seen}, bucket=bucket))
        for name, room, birth, moved_out in tenants:
            sequence += 2
            changes.append(apply.stamp("tenant", uuid7(now_ms, secrets.token_bytes(10)), {
                "house": house_id, "name": name, "room": room, "phone": f"139{sequence:08d}",
                "id_number": demo_id_number(birth, sequence), "moved_in": "2026-03-01",
                **({"moved_out": moved_out} if moved_out else {})}, bucket=bucket))
    return changes
