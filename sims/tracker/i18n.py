"""The tracker's two interface languages, chosen from the browser's ``Accept-Language``.

English is the default (and what any language other than Chinese gets); a browser whose
preferred language is Chinese (``zh``, ``zh-CN``, ``zh-TW``...) gets Chinese labels. The
data itself (titles, names) is never translated, as in a real tracker.
"""

from __future__ import annotations

import datetime as dt

from werkzeug.datastructures import LanguageAccept

LANGUAGES = ("en", "zh")
DEFAULT = "en"

LABELS: dict[str, dict[str, str]] = {
    "en": {
        "app": "Northwind Tracker",
        "sign_in": "Sign in",
        "username": "Username",
        "password": "Password",
        "bad_login": "Invalid username or password.",
        "signed_out": "You have been signed out.",
        "please_sign_in": "Please sign in to continue.",
        "dashboard": "Dashboard",
        "incidents": "Incidents",
        "wiki": "Wiki",
        "minutes": "Meeting minutes",
        "signed_in_as": "Signed in as",
        "sign_out": "Sign out",
        "number": "#",
        "title": "Title",
        "status": "Status",
        "opened": "Opened",
        "reporter": "Reporter",
        "recorded_by": "Recorded by",
        "severity": "Severity",
        "meeting_date": "Meeting date",
        "last_edited": "Last edited",
        "attachments": "Attachments",
        "download": "Download",
        "size": "Size",
        "checksum": "SHA-256",
        "next": "Next",
        "previous": "Previous",
        "page": "Page {page} of {pages}",
        "welcome": "Welcome back, {user}.",
        "open_incidents": "{count} incidents, {minutes} pages of meeting minutes.",
        "not_found": "Page not found.",
        "server_error": "Something went wrong on our side. Please try again later.",
        "processing": "This attachment is being processed. Please try again in a minute.",
        "critical": "Critical",
        "major": "Major",
        "minor": "Minor",
        "trivial": "Trivial",
        "open": "Open",
        "resolved": "Resolved",
        "closed": "Closed",
        "published": "Published",
    },
    "zh": {
        "app": "Northwind 问题跟踪",
        "sign_in": "登录",
        "username": "用户名",
        "password": "密码",
        "bad_login": "用户名或密码错误。",
        "signed_out": "您已退出登录。",
        "please_sign_in": "请先登录。",
        "dashboard": "仪表盘",
        "incidents": "事件",
        "wiki": "知识库",
        "minutes": "会议纪要",
        "signed_in_as": "当前用户",
        "sign_out": "退出",
        "number": "编号",
        "title": "标题",
        "status": "状态",
        "opened": "创建日期",
        "reporter": "报告人",
        "recorded_by": "记录人",
        "severity": "严重程度",
        "meeting_date": "会议日期",
        "last_edited": "最后编辑",
        "attachments": "附件",
        "download": "下载",
        "size": "大小",
        "checksum": "SHA-256 校验值",
        "next": "下一页",
        "previous": "上一页",
        "page": "第 {page} 页，共 {pages} 页",
        "welcome": "欢迎回来，{user}。",
        "open_incidents": "共 {count} 个事件，{minutes} 篇会议纪要。",
        "not_found": "页面不存在。",
        "server_error": "服务器出错，请稍后再试。",
        "processing": "附件正在处理中，请稍后再试。",
        "critical": "致命",
        "major": "严重",
        "minor": "一般",
        "trivial": "轻微",
        "open": "处理中",
        "resolved": "已解决",
        "closed": "已关闭",
        "published": "已发布",
    },
}


def negotiate(accept: LanguageAccept) -> str:
    """The first language the browser prefers (by quality) that the tracker speaks.

    Matched on the primary subtag, in the browser's order of preference: ``en-GB,
    zh;q=0.5`` is English. (Werkzeug's ``best_match`` prefers an exact match of a less
    wanted language over a regional variant of a more wanted one.)
    """
    for value, quality in accept:  # sorted by quality, best first
        if quality <= 0:
            continue
        primary = value.split("-", 1)[0].split("_", 1)[0].lower()
        if primary in LANGUAGES:
            return primary
    return DEFAULT


def long_date(day: dt.date, language: str) -> str:
    if language == "zh":
        return f"{day.year}年{day.month}月{day.day}日"
    return f"{day:%b} {day.day}, {day.year}"


def human_size(size: int, language: str) -> str:
    if size < 1024:
        return f"{size} B" if language == "en" else f"{size} 字节"
    return f"{size / 1024:.1f} KB"
