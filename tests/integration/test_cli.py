"""The ``nurture`` command as a marketer and an operator use it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner

from webapp.cli import common, main

ROOT = Path(__file__).resolve().parents[2]
MONDAY = "2026-03-02T10:00:00+00:00"


@pytest.fixture
def run(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """Invoke the CLI in-process against a private SQLite database."""
    monkeypatch.setenv("NURTURE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.sqlite3'}")
    monkeypatch.setenv("NURTURE_SEQUENCES_DIR", str(ROOT / "sequences"))
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(ROOT / "templates"))
    common.settings.cache_clear()

    def invoke(*args: str):  # type: ignore[no-untyped-def]
        return CliRunner().invoke(main, list(args), catch_exceptions=False)

    yield invoke
    common.settings.cache_clear()


def test_validate_passes_on_the_shipped_sequences(run):
    result = run("sequences", "validate", str(ROOT / "sequences"))
    assert result.exit_code == 0, result.output
    assert "4 file(s) OK" in result.output


def test_validate_names_file_line_and_fix_on_a_broken_copy(run, tmp_path):
    broken = tmp_path / "sequences"
    shutil.copytree(ROOT / "sequences", broken)
    path = broken / "lost-on-price.yaml"
    lines = path.read_text().splitlines()
    goto = next(i for i, line in enumerate(lines) if "goto: case-study" in line)
    wait = next(i for i, line in enumerate(lines) if line.strip() == "- wait: 4d")
    lines[goto] = lines[goto].replace("case-study", "case-stuy")
    lines[wait] = lines[wait].replace("4d", "4 days")
    path.write_text("\n".join(lines) + "\n")

    result = run("sequences", "validate", str(broken))
    assert result.exit_code == 1
    assert f"{path}:{goto + 1}: " in result.output
    assert "did you mean 'case-study'" in result.output
    assert f"{path}:{wait + 1}: " in result.output
    assert "4d, 12h" in result.output  # the hint shows how to write a duration


def simulate(run, sequence, prospect, events=None, tmp_path=None):  # type: ignore[no-untyped-def]
    args = ["simulate", sequence, "--prospect", json.dumps(prospect), "--days", "60"]
    args += ["--start", MONDAY, "--json"]
    if events is not None:
        file = tmp_path / "events.json"
        file.write_text(json.dumps(events))
        args += ["--events", str(file)]
    result = run(*args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    emails = [
        (line["step"], line["at"][:16]) for line in data["timeline"] if line["kind"] == "email"
    ]
    return data, emails


PRICE = {"status": "closed_lost", "lost_reason": "price", "first_name": "Ana"}


def test_simulate_lost_on_price_without_engagement(run):
    data, emails = simulate(run, "lost-on-price", PRICE)
    assert emails == [("value-recap", "2026-03-02T10:00"), ("nudge", "2026-03-06T10:00")]
    assert data["outcome"] == "completed"


def test_simulate_lost_on_price_with_a_click_and_a_pricing_visit(run, tmp_path):
    events = [
        {"after": "value-recap", "delay": "2h", "event": "email.clicked"},
        {"at": "9d", "event": "page.visited", "data": {"path": "/pricing/teams"}},
    ]
    data, emails = simulate(run, "lost-on-price", PRICE, events, tmp_path)
    assert emails == [
        ("value-recap", "2026-03-02T10:00"),
        ("case-study", "2026-03-06T10:00"),
        ("nudge", "2026-03-11T10:00"),  # the pricing visit cut the 10-day wait short
    ]
    branch = next(line for line in data["timeline"] if line["kind"] == "branch")
    assert "email.clicked since value-recap -> case-study" in branch["detail"]


def test_simulate_a_scanner_click_is_ignored_and_a_reply_exits(run, tmp_path):
    scanner = [{"after": "value-recap", "delay": "0s", "event": "email.clicked", "machine": True}]
    data, emails = simulate(run, "lost-on-price", PRICE, scanner, tmp_path)
    assert [step for step, _ in emails] == ["value-recap", "nudge"]  # the else arm
    reply = [{"at": "3d", "event": "email.replied"}]
    data, emails = simulate(run, "lost-on-price", PRICE, reply, tmp_path)
    assert [step for step, _ in emails] == ["value-recap"]
    assert data["outcome"] == "exit condition: email.replied"


def test_simulate_not_ready_with_and_without_engagement(run, tmp_path):
    prospect = {"status": "not_ready", "timezone": "Europe/Berlin"}
    data, emails = simulate(run, "not-ready-timing", prospect)
    # Tue-Thu 09:30-16:00 Berlin: Monday's first email is held until Tuesday 09:30 (08:30 UTC)
    first = next(line for line in data["timeline"] if line["kind"] == "email")
    assert first["send_at"].startswith("2026-03-03T08:30")
    assert [step for step, _ in emails] == ["checklist", "stories", "ready-check"]
    events = [{"at": "3d", "event": "page.visited", "data": {"path": "/pricing"}}]
    data, emails = simulate(run, "not-ready-timing", prospect, events, tmp_path)
    assert emails == [("checklist", "2026-03-02T10:00"), ("ready-check", "2026-03-05T10:00")]


def test_simulate_went_dark_with_and_without_engagement(run, tmp_path):
    prospect = {"status": "closed_lost", "lost_reason": "went_dark"}
    _, emails = simulate(run, "went-dark-after-demo", prospect)
    assert [step for step, _ in emails] == ["demo-recap", "quick-question", "next-steps"]
    assert emails[-1][1] == "2026-03-12T10:00"  # 3d + the full 7d wait
    events = [{"after": "demo-recap", "delay": "1d", "event": "email.clicked"}]
    _, emails = simulate(run, "went-dark-after-demo", prospect, events, tmp_path)
    assert [step for step, _ in emails] == ["demo-recap", "next-steps"]


def test_simulate_explains_a_prospect_that_would_not_enroll(run):
    data, emails = simulate(run, "lost-on-price", {"status": "lead"})
    assert emails == []
    assert data["outcome"] == "not enrolled"
    assert "enroll.when" in data["timeline"][0]["detail"]


def test_simulate_rejects_a_bad_events_file(run, tmp_path):
    bad = tmp_path / "events.yaml"
    bad.write_text("- {event: email.clickd, at: 1d}\n")
    result = run("simulate", "lost-on-price", "--prospect", "{}", "--events", str(bad))
    assert result.exit_code == 1
    assert "did you mean 'email.clicked'" in result.output


def test_init_import_and_list(run, tmp_path):
    result = run("init")
    assert result.exit_code == 0, result.output
    assert "3 created" in result.output
    csv_file = tmp_path / "prospects.csv"
    csv_file.write_text(
        "email,first_name,status,lost_reason,industry\n"
        "ana@example.com,Ana,closed_lost,price,retail\n"
        "not-an-email,Bo,closed_lost,price,\n"
        "cy@example.com,Cy,not_ready,,saas\n"
    )
    result = run("import", str(csv_file))
    assert result.exit_code == 1  # one row rejected, the others loaded
    assert f"{csv_file}:3: email: 'not-an-email' is not an email address" in result.output
    assert "2 created, 0 updated, 2 enrolled, 1 rejected" in result.output
    listing = run("sequences", "list")
    assert "lost-on-price" in listing.output
    assert "v1" in listing.output


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_nurture_up_answers_on_its_health_endpoint(tmp_path):
    port = free_port()
    env = {
        **os.environ,
        "NURTURE_DATABASE_URL": f"sqlite:///{tmp_path / 'up.sqlite3'}",
        "NURTURE_REDIS_URL": "",
    }
    cmd = [sys.executable, "-m", "webapp.cli", "up", "--port", str(port)]
    proc = subprocess.Popen(
        cmd, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        body = None
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and body is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    body = json.loads(r.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read().decode()  # type: ignore[union-attr]
                time.sleep(0.2)
        assert body is not None, "nurture up did not answer within 60 s"
        assert body["status"] == "ok"
        assert body["database"] == "ok"
        assert body["queue"] == "in-process"
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=30)[0].decode()
    assert proc.returncode == 0, output
    # A fresh install has no users: the one-time link to create the admin is printed.
    assert "First run" in output
    assert f"http://127.0.0.1:{port}/setup/" in output


def _copy_content(tmp_path: Path) -> tuple[Path, Path]:
    sequences, templates = tmp_path / "sequences", tmp_path / "templates"
    shutil.copytree(ROOT / "sequences", sequences)
    shutil.copytree(ROOT / "templates", templates)
    return sequences, templates


def test_validate_reports_template_mistakes_at_their_line(run, tmp_path, monkeypatch):
    # issue #7 items 9 and 15, through the command marketers run.
    sequences, templates = _copy_content(tmp_path)
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(templates))
    common.settings.cache_clear()
    recap = templates / "price" / "value-recap.mjml"
    text = recap.read_text()
    text = text.replace("{{ prospect.first_name", "{{ prospect.frist_name", 1)
    text = text.replace("<mj-button ", "<mj-buton ", 1).replace("</mj-button>", "</mj-buton>", 1)
    recap.write_text(text)
    lines = text.splitlines()
    name_line = next(i for i, line in enumerate(lines) if "frist_name" in line) + 1
    tag_line = next(i for i, line in enumerate(lines) if "<mj-buton" in line) + 1

    result = run("sequences", "validate", str(sequences))

    assert result.exit_code == 1
    assert (
        f"{recap}:{name_line}: unknown field 'prospect.frist_name' (did you mean "
        "'prospect.first_name'?)" in result.output
    )
    assert (
        f"{recap}:{tag_line}: MJML: <mj-buton> is not an MJML tag and would be sent as it is "
        "(did you mean <mj-button>?)" in result.output
    )


def test_validate_warns_about_a_preheader_the_template_never_shows(run, tmp_path, monkeypatch):
    # issue #7 item 13: the preheader was silently dropped.
    sequences, templates = _copy_content(tmp_path)
    monkeypatch.setenv("NURTURE_TEMPLATES_DIR", str(templates))
    common.settings.cache_clear()
    recap = templates / "price" / "value-recap.mjml"  # without the head, no preview text
    recap.write_text(recap.read_text().replace('<mj-include path="_partials/head.mjml" />', ""))
    path = sequences / "lost-on-price.yaml"
    lines = path.read_text().splitlines()
    step = next(i for i, line in enumerate(lines) if "email: price/value-recap" in line)
    at = next(i for i in range(step, len(lines)) if "preheader:" in lines[i])

    result = run("sequences", "validate", str(sequences))

    assert result.exit_code == 0, result.output
    assert "4 file(s) OK, 1 warning(s)" in result.output
    assert (
        f"{path}:{at + 1}: warning: step 'value-recap': the preheader is never shown: template "
        "'price/value-recap' has no {{ preheader }}; add <mj-preview>{{ preheader }}"
        "</mj-preview> to its <mj-head> (as _partials/head.mjml does), or remove the preheader"
    ) in result.output
