"""`rollcall notify import|list` in process against a database of its own: the files the HTTP
API takes, through the same importer (all or nothing, every problem named by file, line and
field; robots' webhooks on the allow-list only), and a listing that shows no address."""

import asyncio
import json

from sqlalchemy import text
from typer.testing import CliRunner

from rollcall.cli import app
from rollcall.reference import load_demo
from shared.db import make_engine, make_sessionmaker
from tests.conftest import Servers
from tests.integration.notify_support import VILLAGE, notify_database

UNIT = f"{VILLAGE}-CL"


def _prepare(servers: Servers) -> str:
    url = notify_database(servers)

    async def load() -> None:
        engine = make_engine(url, pool_size=1)
        async with make_sessionmaker(engine)() as session, session.begin():
            await load_demo(session)
        await engine.dispose()

    asyncio.run(load())
    return url


def _count(url: str, sql: str) -> int:
    async def run() -> int:
        engine = make_engine(url, pool_size=1)
        try:
            async with make_sessionmaker(engine)() as session:
                return (await session.execute(text(sql))).scalar_one()
        finally:
            await engine.dispose()

    return asyncio.run(run())


def test_rollcall_notify_imports_staff_all_or_nothing_and_lists_them(
        servers: Servers, monkeypatch, tmp_path) -> None:
    url = _prepare(servers)
    monkeypatch.setenv("ROLLCALL_DATABASE_URL", url)
    monkeypatch.setenv("ROLLCALL_NOTIFY_ALLOWED_HOSTS", "qyapi.weixin.qq.com")
    runner = CliRunner()

    bad = tmp_path / "people.csv"
    bad.write_text(
        "code,name,node,phone,chat_kind,chat_webhook\n"
        f"zhang,张三,{VILLAGE},13912345678,wecom,https://qyapi.weixin.qq.com/send?key=K\n"
        f"li,李四,{VILLAGE},12,,\n"
        f"wang,王五,999999,,dingtalk,https://oapi.dingtalk.com/robot/send?access_token=T\n",
        encoding="utf-8")
    refused = runner.invoke(app, ["notify", "import", "people", str(bad)])
    assert refused.exit_code == 1, refused.output
    output = " ".join(refused.output.split())
    for named in ("people.csv:3", "phone", "invalid_phone", "people.csv:4", "unknown_node",
                  "chat_webhook", "host_not_allowed", "3 problems: nothing imported"):
        assert named in output, (named, refused.output)
    assert _count(url, "SELECT count(*) FROM notify.people") == 0

    people = tmp_path / "people.json"
    people.write_text(json.dumps([
        {"code": "zhang", "name": "张三", "node": VILLAGE, "phone": "13912345678",
         "chat_kind": "wecom", "chat_webhook": "https://qyapi.weixin.qq.com/send?key=K"},
        {"code": "qian", "name": "钱医生", "node": VILLAGE, "email": "qian@example.cn"}],
        ensure_ascii=False), encoding="utf-8")
    imported = runner.invoke(app, ["notify", "import", "people", str(people)])
    assert imported.exit_code == 0, imported.output
    assert "people: 2 rows imported from people.json" in imported.output
    contacts = tmp_path / "contacts.csv"
    contacts.write_text(f"scope,role,person\n{UNIT},in_charge,qian\n", encoding="utf-8")
    rosters = tmp_path / "rosters.csv"
    rosters.write_text(f"node,day,person,role,starts,ends\n{VILLAGE},2031-02-03,zhang,on_duty,"
                       "08:00,20:00\n", encoding="utf-8")
    for kind, path in (("contacts", contacts), ("rosters", rosters)):
        done = runner.invoke(app, ["notify", "import", kind, str(path)])
        assert done.exit_code == 0, done.output
    again = runner.invoke(app, ["notify", "import", "people", str(people)])  # changes nothing
    assert again.exit_code == 0 and _count(url, "SELECT count(*) FROM notify.people") == 2

    outside = runner.invoke(app, ["notify", "import", "contacts", str(contacts),
                                  "--within", "430621109"])
    assert outside.exit_code == 1 and "outside_area" in outside.output

    listed = runner.invoke(app, ["notify", "list", "--node", VILLAGE, "--day", "2031-02-03"],
                           terminal_width=200)
    assert listed.exit_code == 0, listed.output
    assert "张三" in listed.output and "sms, wecom" in listed.output
    assert "qian" in listed.output and "email" in listed.output
    assert "08:00" in listed.output and "20:00" in listed.output
    assert "13912345678" not in listed.output and "key=K" not in listed.output
    assert "qian@example.cn" not in listed.output
