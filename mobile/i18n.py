"""The field app's words, in Chinese (the default) and English, switchable while the app runs.

A plain dict catalog, not gettext: the app has a few hundred short strings,
one screen changes language at runtime, and the APK must not depend on a
compile step (``msgfmt``) or on the device's locale. A dict is looked up in
one step, switching is one assignment, and the test ``tests/gui`` checks that
both languages hold exactly the same keys and the same ``{placeholders}``, which
is the check gettext's tooling would give us.

Presenters (mobile/presenters.py) hand the UI codes (statuses, actions,
location sources, sync phases, input errors), never words: `t` turns them into
words here, so nothing below the UI knows a language.

Use: ``t("home.report")``, ``t("home.unsynced", records=3, photos=2)``,
``status_name("dispatched")``. ``set_language("en")`` switches and tells every
listener (the app refreshes its screens).
"""

from __future__ import annotations

import logging
from typing import Any, Callable

from shared.sizes import size_text  # re-exported: the app's screens word sizes through i18n

__all__ = ["LANGUAGES", "DEFAULT_LANGUAGE", "CATALOG", "t", "set_language", "language", "on_change",
           "status_name", "action_name", "source_name", "phase_name", "error_text", "resolution_name", "kind_name", "reason_text",
           "refusal_text", "state_text",
           "labelled", "size_text"]

log = logging.getLogger(__name__)

LANGUAGES = ("zh", "en")
DEFAULT_LANGUAGE = "zh"

CATALOG: dict[str, dict[str, str]] = {
    "zh": {
        "app.title": "网格巡查",
        "common.back": "返回",
        "common.cancel": "取消",
        "common.ok": "确定",
        "common.save": "保存",
        "common.none": "无",
        "common.never": "从未",
        "common.loading": "正在加载…",
        "common.loading_for": "正在加载…（已 {seconds} 秒）",
        "common.load_failed": "加载失败：{error}",
        "common.labelled": "{label}：{value}",
        # log-in
        "login.title": "登录",
        "login.hint": "首次使用需联网登录一次；之后离线也能打开。",
        "login.again": "登录已失效，请重新登录。未同步的记录都已保留在本机。",
        "login.server": "服务器地址",
        "login.username": "用户名",
        "login.password": "密码",
        "login.submit": "登录",
        "login.busy": "正在登录……",
        "login.failed": "登录失败：{message}",
        "login.missing": "请填写服务器地址、用户名和密码",
        "login.error.bad_url": "服务器地址格式不对，应类似 https://example.org",
        "login.error.wrong_password": "用户名或密码错误",
        "login.error.unreachable": "连接不上服务器：请检查地址和网络",
        "login.error.server_error": "服务器出错，请稍后再试",
        "login.error.refused": "服务器拒绝登录：这是网格巡查服务器的地址吗？",
        "login.error.unsynced_other_user": "上一位用户还有未同步的记录，需由该用户先登录并同步",
        "login.error.missing": "请填写用户名和密码",
        # home
        "home.title": "首页",
        "home.user": "网格员：{name}",
        "home.grids": "今日网格",
        "home.no_grids": "尚未同步网格，请先同步",
        "home.unsynced": "未同步：{records} 条记录，{photos} 张照片",
        "home.rejected": "{count} 条被服务器拒绝，请在“同步”中查看",
        "home.last_sync": "上次成功同步：{when}",
        "home.last_result": "上次同步结果：{result}",
        "home.report": "上报事件",
        "home.cases": "我的案件",
        "home.awaiting": "（{count} 件待我核查）",
        "home.sync": "同步",
        "home.houses": "出租屋",
        "home.settings": "设置",
        # report
        "report.title": "上报事件",
        "report.grid": "网格",
        "report.category": "事件类别",
        "report.micro_mark": "（微）",
        "report.micro_legend": "（微）= 微小事件，可现场处置",
        "report.description": "事件描述",
        "report.description_hint": "发生了什么、在哪里",
        "report.urgent": "紧急（快采快报）",
        "report.on_spot": "已现场处置",
        "report.on_spot_note": "处置说明",
        "report.photos": "照片",
        "report.add_photo": "拍照 / 添加照片",
        "report.remove_photo": "删除",
        "report.location": "位置",
        "report.manual": "手动输入位置",
        "report.refresh_location": "重新定位",
        "report.save": "保存",
        "report.saved": "已保存在本机，将在下次同步时上传",
        "report.no_camera": "无法打开相机：{error}",
        "report.photo_failed": "照片无法读取：{error}",
        "report.choose_photo": "选择照片",
        "report.choose": "添加所选照片",
        "location.none": "没有位置：请手动输入",
        "location.value": "{lat:.5f}, {lon:.5f}",
        "location.accuracy": "精度 ±{accuracy:.0f} 米",
        "location.manual_title": "手动输入位置",
        "location.lat": "纬度",
        "location.lon": "经度",
        "location.invalid": "纬度须在 -90 到 90 之间，经度须在 -180 到 180 之间",
        # cases
        "cases.title": "我的案件",
        "cases.empty": "还没有案件",
        "cases.awaiting": "待我核查",
        "cases.urgent": "紧急",
        "cases.micro": "微",
        "cases.count": "共 {count} 件，待我核查 {awaiting} 件",
        "cases.failed": "核查未通过 {count} 次",
        # case
        "case.title": "案件详情",
        "case.timeline": "处理经过",
        "case.photos": "照片",
        "case.no_photos": "没有照片",
        "case.photo_remote": "照片在服务器上",
        "case.verify": "核查整改结果",
        "case.verify_note": "核查意见",
        "case.verify_hint": "到现场查看整改结果。不通过时请写明原因，可附照片。",
        "case.verify_add_photo": "添加核查照片",
        "case.pass": "核查通过",
        "case.fail": "核查不通过",
        "case.verified": "核查结果已保存，将在下次同步时上传",
        "case.not_awaiting": "此案件现在无需你核查",
        "case.failed": "核查未通过 {count} 次",
        "case.superseded": "（未生效：{reason}）",
        "case.reported_at": "上报时间：{when}",
        "case.location": "位置：{place}",
        "case.status": "状态：{status}",
        # sync
        "sync.title": "同步",
        "sync.now": "立即同步",
        "sync.retry": "重试",
        "sync.idle": "未在同步",
        "sync.running": "正在同步：{phase}",
        "sync.ok": "同步成功：上传 {pushed} 条，下载 {pulled} 条",
        "sync.ok_photos": "同步成功：上传 {pushed} 条、照片 {photos} 张，下载 {pulled} 条",
        "sync.failed": "同步失败：{error}",
        "sync.partial": "上传已完成（{pushed} 条、照片 {photos} 张）；下载未完成：已收到 {pulled} 条，其余下次同步继续",
        "sync.offline": "网络不可用，记录已保存在本机",
        "sync.needs_login": "需要重新登录",
        "sync.photos_failed": "{count} 张照片未能上传，下次同步会再试",
        "sync.rejections": "被服务器拒绝的记录",
        "sync.rejected_count": "{count} 条被拒绝",
        "sync.no_rejections": "没有被拒绝的记录",
        "sync.dismiss": "知道了",
        "sync.unsynced": "未同步：{records} 条记录，{photos} 张照片",
        "sync.rejection_line": "{kind} {record}：{reason}",
        "reason.forbidden": "无权限",
        "reason.invalid": "内容无效",
        "reason.append-only": "记录后不可更改",
        # what the server refused, by its code (server/sync/apply.py; docs/api.md "Refusal codes")
        "refusal.not_your_grid": "不是您负责的网格",
        "refusal.reference_data": "基础数据只能由管理员修改",
        "refusal.role_may_not": "您的角色无权进行此操作",
        "refusal.stand_in": "只有督导员可以代为核查",
        "refusal.not_your_unit": "该案件未派给您的单位",
        "refusal.author_not_you": "记录人必须是您本人",
        "refusal.written_once": "记录人一经填写不可更改",
        "refusal.server_field": "该项由服务器填写",
        "refusal.invalid": "内容无效",
        "refusal.missing_fields": "缺少必填项",
        "refusal.missing_evidence": "缺少说明或照片",
        "refusal.append_only": "记录后不可更改",
        "refusal.id_taken": "记录编号冲突",
        "refusal.bad_parent": "所属记录无效",
        "refusal.wrong_bucket": "所属网格不一致",
        # where a record stands
        "state.synced": "已同步",
        "state.local": "仅存本机，未上传",
        "state.refused": "被拒绝：{reason}",
        "state.refused_short": "被拒绝",
        "case.refused_title": "服务器拒绝了这条记录",
        "case.refused_help": "您填写的内容仍保存在本机。可改正后重新上传，或放弃修改（恢复为服务器上的内容）。",
        "case.mend_grid": "改为网格",
        "case.resend": "重新上传",
        "case.discard": "放弃修改",
        "case.discard_confirm": "确定放弃？本机上被拒绝的修改将被删除，记录恢复为服务器上的内容。",
        "case.resent": "已改正，将在下次同步时重新上传",
        "case.discarded": "已放弃修改",
        "case.discarded_gone": "已放弃：服务器上没有这条记录，已从本机删除",
        "sync.open": "查看",
        "sync.now_what": "立即同步：上传 {records} 条记录、{photos} 张照片，并下载更新",
        "sync.now_download": "立即同步：下载更新",
        "sync.retry_what": "重试：上传 {records} 条记录、{photos} 张照片",
        "sync.photos_progress": "照片 {done} / {total}",
        "sync.records_progress": "已发送 {sent} 条记录，已收到 {received} 条",
        "house.move_out_confirm": "确定 {name} 已搬离？",
        # settings
        "settings.title": "设置",
        "settings.language": "语言",
        "settings.photo_size": "照片尺寸（长边像素）",
        "settings.server": "服务器地址",
        "settings.saved": "设置已保存",
        # codes
        "status.reported": "已上报",
        "status.dispatched": "已派遣",
        "status.rectified": "已整改",
        "status.returned": "退回整改",
        "status.closed": "已结案",
        "resolution.verified": "核查通过",
        "resolution.handled_on_spot": "现场处置",
        "resolution.closed": "网格长直接结案",
        "resolution.duplicate": "重复案件",
        "action.report": "上报",
        "action.dispatch": "派遣",
        "action.rectify": "整改",
        "action.verify_pass": "核查通过",
        "action.verify_fail": "核查不通过",
        "action.close": "结案",
        "action.return": "退回",
        "action.extend": "延期",
        "action.comment": "备注",
        "action.handle_on_spot": "现场处置",
        "action.mark_duplicate": "标记重复",
        "action.supervise": "督办",
        "action.send_back": "退回（非本单位）",
        "case.number": "案件编号：{number}",
        "case.no_number": "尚未编号：同步到服务器后由服务器编号",
        "cases.no_number": "未编号（待同步）",
        "action.request_extension": "申请延期",
        "action.grant_extension": "同意延期",
        "action.refuse_extension": "不同意延期",
        "source.gps": "GPS",
        "source.last_known": "最近已知位置",
        "source.manual": "手动输入",
        "phase.push": "上传记录",
        "phase.photos": "上传照片",
        "phase.pull": "下载更新",
        "kind.event": "事件",
        "kind.case_action": "案件操作",
        "kind.rental_house": "出租屋",
        "kind.house_check": "出租屋检查",
        "kind.tenant": "暂住人员",
        "kind.patrol": "巡查",
        "error.required": "必填",
        "error.invalid": "无效",
        "error.too_long": "太长",
        "error.not_micro": "只有微小事件可以现场处置",
        "error.not_allowed": "你的角色不能这样做",
        "error.unknown": "不在可选范围内",
        "error.not_an_image": "不是可读取的图片",
        "error.too_many": "太多",
        "error.not_logged_in": "请先登录",
        "error.not_awaiting": "此案件现在无需你核查",
        "error.not_found": "找不到",
        "error.not_refused": "这条记录没有被拒绝",
        "field.grid": "网格",
        "field.category": "事件类别",
        "field.description": "事件描述",
        "field.location": "位置",
        "field.photos": "照片",
        "field.note": "说明",
        "field.handled_on_spot": "现场处置",
        "field.photo": "照片",
        "field.case": "案件",
        "field.user": "用户",
        "field.form": "表单",
        "field.event": "事件",
        "field.address": "地址",
        "field.urgent": "紧急",
        # rental houses (mobile/ui/screens/houses.py)
        "houses.title": "出租屋",
        "houses.search": "按地址或房东搜索",
        "houses.count": "共 {count} 栋",
        "houses.empty": "本网格还没有出租屋（同步后显示）",
        "houses.hazards": "{count} 项隐患",
        "houses.no_hazards": "无隐患",
        "houses.rate": "登记率 {rate}",
        "houses.row": "房东：{owner}\u3000上次检查：{checked}\u3000在住登记：{tenants} 人",
        "house.title": "出租屋",
        "house.new_check": "新建检查",
        "house.new_tenant": "登记租户",
        "house.owner": "房东：{owner} {phone}",
        "house.building_head": "楼栋长：{name}",
        "house.size": "{floors} 层，{rooms} 间",
        "house.risk": "风险等级：{grade}",
        "risk.low": "低",
        "risk.medium": "中",
        "risk.high": "高",
        "house.registration": "登记率 {rate}（已登记 {tenants} 人 / 上次检查见到 {seen} 人，目标 95%）",
        "house.hazards": "未整改隐患",
        "house.no_hazards": "上次检查无隐患",
        "house.report_hazard": "上报为事件",
        "house.checks": "检查记录",
        "house.no_checks": "还没有检查记录",
        "house.check_failed": "{count} 项不合格",
        "house.check_ok": "全部合格",
        "house.unsynced": "（未同步）",
        "house.tenants": "在住租户（{count} 人）",
        "house.room": "{room} 房",
        "house.moved_out": "已于 {day} 搬离",
        "house.move_out": "搬离",
        "house.moved_out_saved": "已记录搬离",
        "check.title": "出租屋检查",
        "check.pass": "合格",
        "check.fail": "不合格",
        "check.na": "不适用",
        "check.note": "说明（不合格时必填）",
        "check.residents_seen": "现场见到的居住人数",
        "check.residents_hint": "例如 6",
        "check.save": "保存检查",
        "check.saved": "检查已保存在本机，将在下次同步时上传",
        "check.no_checklist": "还没有检查表：请先联网同步",
        "tenant.title": "登记租户",
        "tenant.name": "姓名",
        "tenant.id_number": "身份证号码",
        "tenant.phone": "电话",
        "tenant.room": "房号",
        "tenant.moved_in": "入住日期（年-月-日）",
        "tenant.id_hint": "18 位，末位可为 X",
        "tenant.privacy": "身份证号码属于个人信息：列表中只显示前四位和后四位，服务器加密保存。",
        "tenant.save": "保存登记",
        "tenant.saved": "租户已登记，将在下次同步时上传",
        "field.answers": "检查项",
        "field.id_number": "身份证号码",
        "field.name": "姓名",
        "field.moved_in": "入住日期",
        "field.moved_out": "搬离日期",
        "field.residents_seen": "居住人数",
        "field.checklist": "检查表",
        "field.house": "出租屋",
        "field.tenant": "租户",
        "field.item": "检查项",
        "field.check": "检查",
        "error.note_required": "不合格项须填写说明",
        "error.not_in_checklist": "不在当前检查表中",
        "error.not_synced": "尚未同步，请先联网同步",
        "error.not_failed": "该项没有不合格",
        "error.before_moved_in": "不能早于入住日期",
        "error.resident_id_length": "应为 18 位",
        "error.resident_id_digits": "前 17 位必须是数字",
        "error.resident_id_last_character": "最后一位应为数字或大写 X",
        "error.resident_id_address_code": "前 6 位地址码不能以 0 开头",
        "error.resident_id_birth_date": "第 7–14 位应为出生日期（年月日）",
        "error.resident_id_check_character": "校验位不符，请核对是否输错",
        "error.field": "{field}：{problem}",
        "font.missing": "未找到中文字体",
        # key places (mobile/ui/screens/places.py, home)
        "home.places": "重点场所",
        "home.places_due": "待检查重点场所：{due} 处（其中超期或从未检查 {overdue} 处）",
        "home.places_none_due": "重点场所：暂无到期检查",
        "places.title": "重点场所",
        "places.search": "按名称、地址或负责人搜索",
        "places.due_only": "只看待检查",
        "places.count": "共 {count} 处，{due} 处待检查",
        "places.empty": "没有符合的重点场所（同步后显示本网格的场所）",
        "places.status.never": "从未检查",
        "places.status.overdue": "已超期",
        "places.status.due": "即将到期",
        "places.status.ok": "正常",
        "places.status.unscheduled": "未定检查周期",
        "places.due": "应检 {when}",
        "places.grade": "{grade} 级",
        "places.last_check": "上次检查：{when}",
        "places.mine": "我负责",
        "place.title": "重点场所",
        "place.new_check": "新建检查",
        "place.person": "负责人：{name} {phone}",
        "place.every": "每 {days} 天检查一次",
        "place_check.title": "重点场所检查",
        "kind.place_type": "场所类型",
        "kind.place": "重点场所",
        "kind.place_check": "场所检查",
        "field.place": "场所",
    },
    "en": {
        "app.title": "Grid Patrol",
        "common.back": "Back",
        "common.cancel": "Cancel",
        "common.ok": "OK",
        "common.save": "Save",
        "common.none": "none",
        "common.never": "never",
        "common.loading": "Loading…",
        "common.loading_for": "Loading… ({seconds} s)",
        "common.load_failed": "Could not load: {error}",
        "common.labelled": "{label}: {value}",
        "login.title": "Log in",
        "login.hint": "Log in online once; after that the app opens without a network.",
        "login.again": "Your log-in was refused; please log in again. Every unsynced capture is kept on this tablet.",
        "login.server": "Server URL",
        "login.username": "User name",
        "login.password": "Password",
        "login.submit": "Log in",
        "login.busy": "Logging in…",
        "login.failed": "Log-in failed: {message}",
        "login.missing": "Fill in the server URL, user name and password",
        "login.error.bad_url": "The server address must look like https://example.org",
        "login.error.wrong_password": "Wrong user name or password",
        "login.error.unreachable": "Cannot reach the server: check the address and the network",
        "login.error.server_error": "The server had a problem; try again later",
        "login.error.refused": "The server refused the log-in: is this a GridPatrol server's address?",
        "login.error.unsynced_other_user": "The previous user's captures have not synced: that user must log in and sync first",
        "login.error.missing": "Enter a user name and a password",
        "home.title": "Home",
        "home.user": "Grid worker: {name}",
        "home.grids": "Today's grids",
        "home.no_grids": "No grids yet: sync first",
        "home.unsynced": "Not synced: {records} records, {photos} photos",
        "home.rejected": "{count} refused by the server: see Sync",
        "home.last_sync": "Last successful sync: {when}",
        "home.last_result": "Last sync: {result}",
        "home.report": "Report event",
        "home.cases": "My cases",
        "home.awaiting": "({count} awaiting my verification)",
        "home.sync": "Sync",
        "home.houses": "Rental houses",
        "home.settings": "Settings",
        "report.title": "Report event",
        "report.grid": "Grid",
        "report.category": "Category",
        "report.micro_mark": " (micro)",
        "report.micro_legend": "(micro) = micro event, may be handled on the spot",
        "report.description": "Description",
        "report.description_hint": "What happened, and where",
        "report.urgent": "Urgent (quick report)",
        "report.on_spot": "Handled on the spot",
        "report.on_spot_note": "What was done",
        "report.photos": "Photos",
        "report.add_photo": "Take / add photo",
        "report.remove_photo": "Remove",
        "report.location": "Location",
        "report.manual": "Enter location",
        "report.refresh_location": "Locate again",
        "report.save": "Save",
        "report.saved": "Saved on this tablet; it goes up with the next sync",
        "report.no_camera": "The camera could not be opened: {error}",
        "report.photo_failed": "The photo could not be read: {error}",
        "report.choose_photo": "Choose a photo",
        "report.choose": "Add the chosen photo",
        "location.none": "No location: enter it by hand",
        "location.value": "{lat:.5f}, {lon:.5f}",
        "location.accuracy": "accuracy ±{accuracy:.0f} m",
        "location.manual_title": "Enter the location",
        "location.lat": "Latitude",
        "location.lon": "Longitude",
        "location.invalid": "Latitude must be within -90..90 and longitude within -180..180",
        "cases.title": "My cases",
        "cases.empty": "No cases yet",
        "cases.awaiting": "Awaiting my verification",
        "cases.urgent": "Urgent",
        "cases.micro": "Micro",
        "cases.count": "{count} cases, {awaiting} awaiting my verification",
        "cases.failed": "failed verification {count}×",
        "case.title": "Case",
        "case.timeline": "Timeline",
        "case.photos": "Photos",
        "case.no_photos": "No photos",
        "case.photo_remote": "Photo on the server",
        "case.verify": "Verify the rectification",
        "case.verify_note": "Verification note",
        "case.verify_hint": "Check the rectification on site. A failure needs a note; photos help.",
        "case.verify_add_photo": "Add a photo",
        "case.pass": "Pass",
        "case.fail": "Fail",
        "case.verified": "Verification saved; it goes up with the next sync",
        "case.not_awaiting": "This case does not wait for your verification",
        "case.failed": "Failed verification {count}×",
        "case.superseded": " (not applied: {reason})",
        "case.reported_at": "Reported: {when}",
        "case.location": "Location: {place}",
        "case.status": "Status: {status}",
        "sync.title": "Sync",
        "sync.now": "Sync now",
        "sync.retry": "Retry",
        "sync.idle": "Not syncing",
        "sync.running": "Syncing: {phase}",
        "sync.ok": "Synced: {pushed} sent, {pulled} received",
        "sync.ok_photos": "Synced: {pushed} sent with {photos} photos, {pulled} received",
        "sync.failed": "Sync failed: {error}",
        "sync.partial": "Uploads done ({pushed} sent, {photos} photos); download unfinished: {pulled} received, "
                        "the rest comes with the next sync",
        "sync.offline": "No network; everything is kept on this tablet",
        "sync.needs_login": "Log in again",
        "sync.photos_failed": "{count} photos did not go up; the next sync tries again",
        "sync.rejections": "Changes the server refused",
        "sync.rejected_count": "{count} refused",
        "sync.no_rejections": "Nothing was refused",
        "sync.dismiss": "Dismiss",
        "sync.unsynced": "Not synced: {records} records, {photos} photos",
        "sync.rejection_line": "{kind} {record}: {reason}",
        "reason.forbidden": "not allowed",
        "reason.invalid": "not valid",
        "reason.append-only": "cannot be changed once recorded",
        "refusal.not_your_grid": "not one of your grids",
        "refusal.reference_data": "only admins change reference data",
        "refusal.role_may_not": "your role may not do this",
        "refusal.stand_in": "only a supervisor verifies in the reporter's place",
        "refusal.not_your_unit": "the case is not dispatched to your unit",
        "refusal.author_not_you": "the author must be you",
        "refusal.written_once": "the author cannot be changed",
        "refusal.server_field": "the server fills this in",
        "refusal.invalid": "not valid",
        "refusal.missing_fields": "required fields are missing",
        "refusal.missing_evidence": "a note or photo is missing",
        "refusal.append_only": "cannot be changed once recorded",
        "refusal.id_taken": "the record's id is taken",
        "refusal.bad_parent": "the record it belongs to is not valid",
        "refusal.wrong_bucket": "not in the grid of the record it belongs to",
        "state.synced": "Synced",
        "state.local": "On this tablet only, not sent yet",
        "state.refused": "Refused: {reason}",
        "state.refused_short": "Refused",
        "case.refused_title": "The server refused this record",
        "case.refused_help": "What you entered is kept on this tablet. Correct it and send it again, or discard your "
                             "change (back to what the server holds).",
        "case.mend_grid": "Move to grid",
        "case.resend": "Send again",
        "case.discard": "Discard change",
        "case.discard_confirm": "Discard? The refused change is deleted from this tablet; the record goes back to "
                                "what the server holds.",
        "case.resent": "Corrected; it goes with the next sync",
        "case.discarded": "Change discarded",
        "case.discarded_gone": "Discarded: the server never had this record, so it was removed from this tablet",
        "sync.open": "Open",
        "sync.now_what": "Sync now: send {records} records and {photos} photos, then download",
        "sync.now_download": "Sync now: download updates",
        "sync.retry_what": "Retry: send {records} records and {photos} photos",
        "sync.photos_progress": "Photos {done} / {total}",
        "sync.records_progress": "{sent} records sent, {received} received",
        "house.move_out_confirm": "Has {name} moved out?",
        "settings.title": "Settings",
        "settings.language": "Language",
        "settings.photo_size": "Photo size (longest edge, px)",
        "settings.server": "Server URL",
        "settings.saved": "Settings saved",
        "status.reported": "Reported",
        "status.dispatched": "Dispatched",
        "status.rectified": "Rectified",
        "status.returned": "Returned",
        "status.closed": "Closed",
        "resolution.verified": "verified",
        "resolution.handled_on_spot": "handled on the spot",
        "resolution.closed": "closed by a supervisor",
        "resolution.duplicate": "duplicate",
        "action.report": "Reported",
        "action.dispatch": "Dispatched",
        "action.rectify": "Rectified",
        "action.verify_pass": "Verification passed",
        "action.verify_fail": "Verification failed",
        "action.close": "Closed",
        "action.return": "Returned",
        "action.extend": "Deadline extended",
        "action.comment": "Comment",
        "action.handle_on_spot": "Handled on the spot",
        "action.mark_duplicate": "Marked duplicate",
        "action.supervise": "Put under supervision",
        "action.send_back": "Sent back as not the unit's",
        "case.number": "Case number: {number}",
        "case.no_number": "No case number yet: the server gives one when the case reaches it",
        "cases.no_number": "no number yet (not synced)",
        "action.request_extension": "More time asked for",
        "action.grant_extension": "Extension granted",
        "action.refuse_extension": "Extension refused",
        "source.gps": "GPS",
        "source.last_known": "last known",
        "source.manual": "manual",
        "phase.push": "sending records",
        "phase.photos": "sending photos",
        "phase.pull": "receiving updates",
        "kind.event": "Event",
        "kind.case_action": "Case action",
        "kind.rental_house": "Rental house",
        "kind.house_check": "House check",
        "kind.tenant": "Tenant",
        "kind.patrol": "Patrol",
        "error.required": "required",
        "error.invalid": "not valid",
        "error.too_long": "too long",
        "error.not_micro": "only a micro event can be handled on the spot",
        "error.not_allowed": "your role may not do this",
        "error.unknown": "not one of the choices",
        "error.not_an_image": "not a readable image",
        "error.too_many": "too many",
        "error.not_logged_in": "log in first",
        "error.not_awaiting": "this case does not wait for your verification",
        "error.not_found": "not found",
        "error.not_refused": "this record was not refused",
        "field.grid": "Grid",
        "field.category": "Category",
        "field.description": "Description",
        "field.location": "Location",
        "field.photos": "Photos",
        "field.note": "Note",
        "field.handled_on_spot": "Handled on the spot",
        "field.photo": "Photo",
        "field.case": "Case",
        "field.user": "User",
        "field.form": "Form",
        "field.event": "Event",
        "field.address": "Address",
        "field.urgent": "Urgent",
        # rental houses (mobile/ui/screens/houses.py)
        "houses.title": "Rental houses",
        "houses.search": "Search by address or owner",
        "houses.count": "{count} houses",
        "houses.empty": "No rental houses in your grids yet (they appear after a sync)",
        "houses.hazards": "{count} hazards",
        "houses.no_hazards": "no hazards",
        "houses.rate": "registered {rate}",
        "houses.row": "Owner: {owner}   Last check: {checked}   Registered tenants: {tenants}",
        "house.title": "Rental house",
        "house.new_check": "New check",
        "house.new_tenant": "Register tenant",
        "house.owner": "Owner: {owner} {phone}",
        "house.building_head": "Building head: {name}",
        "house.size": "{floors} floors, {rooms} rooms",
        "house.risk": "Risk grade: {grade}",
        "risk.low": "low",
        "risk.medium": "medium",
        "risk.high": "high",
        "house.registration": "Registration {rate} ({tenants} registered / {seen} seen at the last check; goal 95%)",
        "house.hazards": "Open hazards",
        "house.no_hazards": "No hazards at the last check",
        "house.report_hazard": "Report as event",
        "house.checks": "Checks",
        "house.no_checks": "Not checked yet",
        "house.check_failed": "{count} failed",
        "house.check_ok": "all passed",
        "house.unsynced": "(not synced)",
        "house.tenants": "Tenants ({count} living here)",
        "house.room": "room {room}",
        "house.moved_out": "moved out {day}",
        "house.move_out": "Moved out",
        "house.moved_out_saved": "Move-out recorded",
        "check.title": "House check",
        "check.pass": "Pass",
        "check.fail": "Fail",
        "check.na": "N/A",
        "check.note": "Note (required when failed)",
        "check.residents_seen": "Residents seen",
        "check.residents_hint": "e.g. 6",
        "check.save": "Save check",
        "check.saved": "Check saved on the tablet; it goes up with the next sync",
        "check.no_checklist": "No checklist yet: sync once online",
        "tenant.title": "Register a tenant",
        "tenant.name": "Name",
        "tenant.id_number": "Resident ID number",
        "tenant.phone": "Phone",
        "tenant.room": "Room",
        "tenant.moved_in": "Moved in (YYYY-MM-DD)",
        "tenant.id_hint": "18 characters; the last may be X",
        "tenant.privacy": "ID numbers are personal data: lists show only the first and last four characters, and the server stores them encrypted.",
        "tenant.save": "Save tenant",
        "tenant.saved": "Tenant registered; it goes up with the next sync",
        "field.answers": "Item",
        "field.id_number": "ID number",
        "field.name": "Name",
        "field.moved_in": "Moved in",
        "field.moved_out": "Moved out",
        "field.residents_seen": "Residents seen",
        "field.checklist": "Checklist",
        "field.house": "House",
        "field.tenant": "Tenant",
        "field.item": "Item",
        "field.check": "Check",
        "error.note_required": "a failed item needs a note",
        "error.not_in_checklist": "is not on the current checklist",
        "error.not_synced": "not synced yet: sync once online",
        "error.not_failed": "did not fail",
        "error.before_moved_in": "cannot be before moving in",
        "error.resident_id_length": "must have 18 characters",
        "error.resident_id_digits": "the first 17 must be digits",
        "error.resident_id_last_character": "the last must be a digit or X",
        "error.resident_id_address_code": "the address code cannot start with 0",
        "error.resident_id_birth_date": "characters 7-14 must be a birth date",
        "error.resident_id_check_character": "the check digit does not match: is there a typo?",
        "error.field": "{field}: {problem}",
        "font.missing": "No CJK font found",
        # key places (mobile/ui/screens/places.py, home)
        "home.places": "Key places",
        "home.places_due": "Key places to check: {due} ({overdue} overdue or never checked)",
        "home.places_none_due": "Key places: no check due",
        "places.title": "Key places",
        "places.search": "Search by name, address or person in charge",
        "places.due_only": "To check only",
        "places.count": "{count} places, {due} to check",
        "places.empty": "No key places match (your grids' places appear after a sync)",
        "places.status.never": "Never checked",
        "places.status.overdue": "Overdue",
        "places.status.due": "Due soon",
        "places.status.ok": "Up to date",
        "places.status.unscheduled": "No schedule",
        "places.due": "due {when}",
        "places.grade": "grade {grade}",
        "places.last_check": "Last check: {when}",
        "places.mine": "mine",
        "place.title": "Key place",
        "place.new_check": "New check",
        "place.person": "In charge: {name} {phone}",
        "place.every": "checked every {days} days",
        "place_check.title": "Key place check",
        "kind.place_type": "Place type",
        "kind.place": "Key place",
        "kind.place_check": "Place check",
        "field.place": "Place",
    },
}

_current = DEFAULT_LANGUAGE
_listeners: list[Callable[[str], None]] = []


def language() -> str:
    """The language in use: "zh" or "en"."""
    return _current


def set_language(code: str) -> None:
    """Switch the language and tell every listener; an unknown code falls back to Chinese."""
    global _current
    if code not in CATALOG:
        log.warning("i18n: unknown language %r, using %s", code, DEFAULT_LANGUAGE)
        code = DEFAULT_LANGUAGE
    if code == _current:
        return
    _current = code
    for listener in list(_listeners):
        listener(code)


def on_change(listener: Callable[[str], None]) -> Callable[[], None]:
    """Call listener(code) after each switch; returns a function that removes it."""
    _listeners.append(listener)
    return lambda: _listeners.remove(listener) if listener in _listeners else None


def t(key: str, **values: Any) -> str:
    """The text of key in the current language, formatted; a missing key shows as itself (and is logged)."""
    text = CATALOG[_current].get(key)
    if text is None:
        text = CATALOG[DEFAULT_LANGUAGE].get(key)
        if text is None:
            log.warning("i18n: no text for %r", key)
            return key
    try:
        return text.format(**values) if values else text
    except (KeyError, ValueError, IndexError):
        log.warning("i18n: cannot format %r with %r", key, values)
        return text


def _coded(prefix: str, code: Any) -> str:
    if code is None:
        return t("common.none")
    key = f"{prefix}.{code}"
    return t(key) if key in CATALOG[_current] else str(code)


def status_name(code: Any) -> str:
    """A case status (reported, dispatched …) in words."""
    return _coded("status", code)


def resolution_name(code: Any) -> str:
    """How a case was closed, in words."""
    return _coded("resolution", code)


def action_name(code: Any) -> str:
    """A case action (dispatch, verify_fail …) in words."""
    return _coded("action", code)


def source_name(code: Any) -> str:
    """A location source (gps, last_known, manual) in words."""
    return _coded("source", code)


def phase_name(code: Any) -> str:
    """A sync phase (push, photos, pull) in words."""
    return _coded("phase", code)


def kind_name(code: Any) -> str:
    """A record kind in words."""
    return _coded("kind", code)


def reason_text(reason: str) -> str:
    """A server's rejection reason ("forbidden: grid:G-0201 is not one of your grids") with its kind in words.

    The detail after the colon is the server's (English) and is kept: it names what was refused.
    """
    code, _, detail = (reason or "").partition(":")
    key = f"reason.{code.strip()}"
    if not detail or key not in CATALOG[_current]:
        return reason
    return f"{t(key)}（{detail.strip()}）" if _current == "zh" else f"{t(key)} ({detail.strip()})"


def refusal_text(code: Any, reason: str) -> str:
    """Why the server refused a change, in the app's language: by its code, else the server's own words."""
    key = f"refusal.{code}"
    if isinstance(code, str) and key in CATALOG[_current]:
        return t(key)
    return reason_text(reason)


def state_text(state: str, refusal: Any = None) -> str:
    """Where a record stands (presenters.sync_state), with the refusal's reason in words."""
    if state == "refused" and refusal is not None:
        return t("state.refused", reason=refusal_text(refusal.code, refusal.reason))
    return t(f"state.{state}") if state in ("synced", "local", "refused") else state


def labelled(label: Any, value: Any) -> str:
    """"label: value" with the language's colon (full-width in Chinese)."""
    return t("common.labelled", label=label, value=value)


def error_text(field: str, code: str) -> str:
    """An input error from a presenter (field, code) as one line."""
    name = _coded("field", field)
    problem = _coded("error", code)
    return t("error.field", field=name, problem=problem)
