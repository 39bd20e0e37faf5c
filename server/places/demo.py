"""The demo's key places: the four default place types, a fire-safety checklist per type, places and checks.

Loaded with the rental houses (`server.admin.demo.load(houses=True)`, which `flask demo load` does).
Each type says how often a place of each grade must be checked (A most important, C least), so the
demo shows places overdue, due, up to date and never checked.
"""

from __future__ import annotations

import secrets
from typing import Any

from shared.hlc import format_ms
from shared.records import uuid7

from ..clock import server_clock
from ..sync import apply

# An item: code, passing wording, English, the event category if it fails, the hazard's words, English.
EXTINGUISHER = ("extinguisher", "灭火器在有效期内", "Fire extinguishers in date", "fire_hazard",
                "灭火器过期", "Fire extinguisher expired")
ESCAPE = ("escape_route", "疏散通道畅通", "Escape route clear", "blocked_escape", "疏散通道堵塞", "Escape route blocked")
WIRING = ("wiring", "电线无私拉乱接", "No illegal wiring", "illegal_wiring", "电线私拉乱接", "Illegal wiring")
NO_LIVING = ("no_living", "经营场所不住人（非“三合一”）", "Nobody lives on the premises (no three-in-one)", "fire_hazard",
             "住人（三合一）", "People living on the premises (three-in-one)")
LIGHTS = ("emergency_light", "应急照明和疏散指示完好", "Emergency lights and exit signs work", "fire_hazard",
          "应急照明或疏散指示损坏", "Emergency light or exit sign broken")
EBIKE = ("ebike_indoor", "无电动车室内充电", "No e-bike charging indoors", "ebike_charging",
         "电动车在室内充电", "E-bike charging indoors")
FLAMMABLES = ("flammables", "易燃易爆物品规范存放", "Flammables stored properly", "safety_hazard",
              "易燃易爆物品堆放不当", "Flammables stored unsafely")
LICENSE = ("license", "证照齐全", "Licences in order", "unlicensed_business", "无证经营", "Trading without a licence")
EXITS = ("exits", "安全出口不少于两个且畅通", "At least two clear exits", "blocked_escape",
         "安全出口不足或被封堵", "Too few exits, or exits blocked")
FACILITIES = ("fire_facilities", "消防设施完好有效", "Fire facilities in working order", "fire_hazard",
              "消防设施损坏", "Fire facilities broken")
DUTY = ("duty_log", "消防值班和巡查记录完整", "Fire duty and patrol log kept", "fire_hazard",
        "无消防值班巡查记录", "No fire duty or patrol log")

# A type: code, 中文, English, its checklist's name (中文, English), items, days between checks by grade.
PLACE_TYPES = [
    ("small_shop", "小商店", "Small shop", ("小商店消防安全检查", "Small shop fire-safety check"),
     [EXTINGUISHER, ESCAPE, WIRING, NO_LIVING, EBIKE, LICENSE], {"A": 30, "B": 60, "C": 90}),
    ("small_workshop", "小作坊", "Small workshop", ("小作坊消防安全检查", "Small workshop fire-safety check"),
     [EXTINGUISHER, ESCAPE, WIRING, NO_LIVING, FLAMMABLES, EBIKE], {"A": 15, "B": 30, "C": 60}),
    ("small_venue", "小娱乐场所", "Small entertainment venue", ("小娱乐场所消防安全检查", "Small venue fire-safety check"),
     [EXTINGUISHER, EXITS, LIGHTS, WIRING, NO_LIVING], {"A": 15, "B": 30, "C": 60}),
    ("key_unit", "重点单位", "Key unit", ("重点单位消防安全检查", "Key unit fire-safety check"),
     [FACILITIES, EXTINGUISHER, ESCAPE, LIGHTS, DUTY], {"A": 30, "B": 90, "C": 180}),
]

# A place: grid, name, type, grade, address, person in charge, phone, responsible worker, position,
# then its checks: (days ago, {failed item: note}).
PLACES = [
    ("G-0101", "好又多便利店", "small_shop", "A", "东湖路12号", "陈志强", "13712340001", "worker1", (22.5433, 114.0581),
     [(45, {"extinguisher": "两具灭火器均已过期"}), (40, {})]),
    ("G-0101", "东湖五金店", "small_shop", "B", "东湖村2巷5号", "黄丽", "13712340002", "worker1", (22.5427, 114.0575),
     [(20, {"no_living": "店后隔间住两人", "wiring": "拖线板串接"})]),
    ("G-0101", "老李服装加工坊", "small_workshop", "A", "东湖村7号一楼", "李国栋", "13712340003", "worker1",
     (22.5438, 114.0569), []),
    ("G-0101", "星光KTV", "small_venue", "B", "东湖路30号二楼", "周敏", "13712340004", "worker2", (22.5441, 114.0592),
     [(27, {})]),
    ("G-0101", "东湖小学", "key_unit", "A", "东湖路1号", "王校长", "13712340005", "worker2", (22.5420, 114.0560),
     [(5, {})]),
    ("G-0102", "阿芳小吃店", "small_shop", "C", "东湖路66号", "刘芳", "13712340006", "worker2", (22.5450, 114.0601),
     [(100, {"escape_route": "后门堆放煤气罐"})]),
    ("G-0102", "东湖农贸市场", "key_unit", "B", "东湖路90号", "张经理", "13712340007", "worker2", (22.5455, 114.0610),
     [(95, {"fire_facilities": "消防栓无水"})]),
    ("G-0201", "青石木器厂", "small_workshop", "B", "青石村工业区3号", "吴建华", "13712340008", "worker3",
     (22.5505, 114.0655), [(35, {"flammables": "木屑堆放在配电箱旁"})]),
    ("G-0201", "青石网吧", "small_venue", "A", "青石村5巷1号", "郑涛", "13712340009", "worker3", (22.5510, 114.0660),
     [(10, {})]),
    ("G-0201", "青石社区卫生站", "key_unit", "C", "青石村委旁", "孙医生", "13712340010", "worker3", (22.5500, 114.0648),
     [(150, {})]),
]


def checklist_code(type_code: str) -> str:
    """The code of the checklist of a demo place type."""
    return f"place.{type_code}"


def reference_changes(ref_id) -> list:
    """The place types and their checklists as server-stamped changes (``ref_id(kind, code)`` gives stable ids)."""
    changes = []
    for code, name, name_en, (list_name, list_name_en), items, every in PLACE_TYPES:
        changes.append(apply.stamp("checklist", ref_id("checklist", f"{checklist_code(code)}@1"), {
            "code": checklist_code(code), "name": list_name, "name_en": list_name_en, "version": 1,
            "items": [{"code": c, "text": t, "text_en": e, "category": cat, "hazard": h, "hazard_en": h_en}
                      for c, t, e, cat, h, h_en in items]}))
        changes.append(apply.stamp("place_type", ref_id("place_type", code), {
            "code": code, "name": name, "name_en": name_en, "checklist": checklist_code(code),
            "check_every_days": every}))
    return changes


def sample_places(users: dict[str, Any]) -> list:
    """The demo places and their checks (some items failed), in the demo grids."""
    items = {code: [item[0] for item in type_items] for code, _n, _e, _l, type_items, _every in PLACE_TYPES}
    now_ms = server_clock().physical_ms()
    changes = []
    for grid, name, kind, grade, address, person, phone, worker, (lat, lon), checks in PLACES:
        place_id = uuid7(now_ms, secrets.token_bytes(10))
        changes.append(apply.stamp("place", place_id, {
            "grid": grid, "name": name, "type": kind, "grade": grade, "address": address,
            "location": {"lat": lat, "lon": lon, "accuracy_m": 10.0, "source": "gps"},
            "person_in_charge": person, "phone": phone, "worker": users[worker].id}))
        for days, failed in checks:
            answers = [{"item": code, "result": "fail" if code in failed else "pass",
                        **({"note": failed[code]} if failed.get(code) else {})} for code in items[kind]]
            changes.append(apply.stamp("place_check", uuid7(now_ms, secrets.token_bytes(10)), {
                "place": place_id, "worker": users[worker].id, "checked_at": format_ms(now_ms - days * 86_400_000),
                "checklist": checklist_code(kind), "checklist_version": 1, "answers": answers, "photos": []},
                bucket=f"grid:{grid}"))
    return changes


def load_places(users: dict[str, Any], ref_id) -> None:
    """Add the place types, their checklists, the places and their checks (the demo users must exist)."""
    apply.write_as_server(reference_changes(ref_id))
    apply.write_as_server(sample_places(users))
