"""Zero-downtime index updates: a running service picks up a newly published build, refuses a
broken one while the old keeps serving, and the previous build can be restored."""

from __future__ import annotations

import gc
import os
import random
import signal
import subprocess
import sys
import threading
import time
import weakref
from collections.abc import Callable
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from pydantic import SecretStr

from qa_service.build.pipeline import build_index
from qa_service.cli import main
from qa_service.corpus.entries import dump_corpus, load_corpus
from qa_service.index.store import BUILDS_DIR, VECTORS, current_build_id, list_builds, load_index
from qa_service.settings import Settings
from tests.conftest import ROOT
from tests.fakes import HashingEmbedder

KEY = "s3cret-admin-key"
QUESTION = "How long do back spasms last?"


def edit_answer(settings: Settings, text: str) -> None:
    corpus = load_corpus(settings.corpus_dir)
    entries = [e.model_copy(update={"answer": text}) if e.id == "spasm-duration" else e for e in corpus.entries]
    (settings.corpus_dir / "tiny.yaml").write_text(dump_corpus(entries))


def publish(settings: Settings, embedder: HashingEmbedder, text: str) -> str:
    """Edit the corpus's spasm-duration answer and publish a new build; returns its id."""
    edit_answer(settings, text)
    build_index(settings, embedder)
    return current_build_id(settings.index_dir)


def answer_of(client: TestClient) -> str:
    return str(client.post("/v1/ask", json={"question": QUESTION}).json()["answer"]["answer"])


@pytest.fixture
def admin_settings(built_settings: Settings) -> Settings:
    return built_settings.model_copy(update={"admin_api_key": SecretStr(KEY), "reload_poll_seconds": 0})


def test_admin_reload_serves_the_new_build(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings)
    old = answer_of(client)
    publish(admin_settings, fake_embedder, "Usually a few days; see a clinician if it lasts longer than a week.")
    assert answer_of(client) == old  # published, not yet served

    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200, response.text
    assert response.json()["reloaded"] is True
    assert response.json()["index"]["build_id"] == current_build_id(admin_settings.index_dir)
    assert answer_of(client).startswith("Usually a few days")
    again = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).json()
    assert again["reloaded"] is False
    metrics = client.get("/metrics").text
    assert 'qa_index_reloads_total{result="success"} 1.0' in metrics
    assert f'qa_index_info{{build_id="{response.json()["index"]["build_id"]}"' in metrics


def test_a_reload_frees_the_previous_build(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings)
    state = client.app.state.service  # type: ignore[attr-defined]
    previous = weakref.ref(state.engine.index)
    publish(admin_settings, fake_embedder, "Usually a few days; see a clinician if it lasts longer than a week.")
    assert client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).json()["reloaded"] is True
    # the index holds reference cycles, so only the collector frees it; frozen by the first load,
    # it is unfrozen and collected by the reload, never left in memory for the life of the process
    assert previous() is None
    assert gc.get_freeze_count() > 0  # and the new build's objects are out of the collector's sight


def test_admin_endpoints_need_the_key(
    admin_settings: Settings, built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings)
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": KEY}):
        response = client.post("/v1/admin/reload", headers=headers)
        assert response.status_code == 401 and response.json()["error"]["code"] == "unauthorized"
    disabled = client_for(built_settings).post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert disabled.status_code == 403 and "QA_ADMIN_API_KEY" in disabled.json()["error"]["message"]


def test_a_broken_build_is_refused_and_the_old_one_keeps_serving(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings)
    old = answer_of(client)
    broken = publish(admin_settings, fake_embedder, "A changed answer that must not be served.")
    with (admin_settings.index_dir / BUILDS_DIR / broken / VECTORS).open("ab") as handle:
        handle.write(b"corruption")

    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 409 and response.json()["error"]["code"] == "reload_failed"
    assert "checksum" in response.json()["error"]["message"]
    assert answer_of(client) == old
    ready = client.get("/readyz").json()
    assert ready["status"] == "ready" and "checksum" in ready["last_reload_error"]

    # roll back: CURRENT names the previous build again, and the service reloads it cleanly
    assert main(["rollback", "--index-dir", str(admin_settings.index_dir), "--model", admin_settings.model]) == 0
    assert current_build_id(admin_settings.index_dir) != broken
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 200 and client.get("/readyz").json()["last_reload_error"] is None


def test_the_server_picks_up_a_new_build_by_itself(
    built_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(built_settings.model_copy(update={"reload_poll_seconds": 0.05}))
    publish(built_settings, fake_embedder, "Picked up without a restart.")
    deadline = time.monotonic() + 10
    while answer_of(client) != "Picked up without a restart." and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer_of(client) == "Picked up without a restart."


def test_an_unreadable_current_file_is_refused_and_the_watcher_goes_on(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings.model_copy(update={"reload_poll_seconds": 0.05}))
    old = answer_of(client)
    pointer = admin_settings.index_dir / "CURRENT"
    served = pointer.read_bytes()
    publish(admin_settings, fake_embedder, "Picked up once CURRENT is readable again.")
    fixed = pointer.read_bytes()
    pointer.write_bytes(b"\xff\xfe")  # e.g. a half-copied backup
    time.sleep(0.3)  # several polls of the watcher, each finding CURRENT unreadable
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 409 and "not UTF-8" in response.json()["error"]["message"]
    assert answer_of(client) == old
    assert fixed != served
    pointer.write_bytes(fixed)
    deadline = time.monotonic() + 10
    while answer_of(client) == old and time.monotonic() < deadline:
        time.sleep(0.05)
    assert answer_of(client) == "Picked up once CURRENT is readable again."


def test_builds_and_rollback_repair_an_unreadable_current_file(
    built_settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    build = current_build_id(built_settings.index_dir)
    args = ["--index-dir", str(built_settings.index_dir), "--model", built_settings.model]
    (built_settings.index_dir / "CURRENT").write_bytes(b"\xff\xfe")
    assert main(["ask", QUESTION, *args]) == 1
    assert "CURRENT: unreadable (not UTF-8 text)" in capsys.readouterr().err
    assert main(["builds", *args]) == 0 and f"  {build}" in capsys.readouterr().out
    assert main(["rollback", *args]) == 0 and current_build_id(built_settings.index_dir) == build
    assert "was no readable build" in capsys.readouterr().out


def test_builds_lists_every_build_when_one_is_unreadable(
    built_settings: Settings, fake_embedder: HashingEmbedder, capsys: pytest.CaptureFixture[str]
) -> None:
    first = current_build_id(built_settings.index_dir)
    second = publish(built_settings, fake_embedder, "Second build.")
    (built_settings.index_dir / BUILDS_DIR / first / "manifest.json").write_bytes(b"\xff")
    args = ["--index-dir", str(built_settings.index_dir), "--model", built_settings.model]
    assert main(["builds", *args]) == 1
    out = capsys.readouterr().out
    assert f"  {first}  unreadable:" in out and "not UTF-8" in out and f"* {second}  " in out


def test_builds_and_rollback_cli(
    built_settings: Settings, fake_embedder: HashingEmbedder, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    first = current_build_id(built_settings.index_dir)
    second = publish(built_settings, fake_embedder, "Second build.")
    args = ["--index-dir", str(built_settings.index_dir), "--model", built_settings.model]
    assert main(["builds", *args]) == 0
    out = capsys.readouterr().out
    assert f"* {second}" in out and f"  {first}" in out
    assert main(["rollback", *args]) == 0
    assert current_build_id(built_settings.index_dir) == first
    assert main(["rollback", *args]) == 1  # nothing older
    assert "no build older than" in capsys.readouterr().err
    assert main(["rollback", "--to", second, *args]) == 0 and current_build_id(built_settings.index_dir) == second
    assert main(["rollback", "--to", "nope", *args]) == 1
    assert sorted(list_builds(built_settings.index_dir)) == sorted([first, second])


BUILDER = """
import sys
import threading
from pathlib import Path
from qa_service.build.pipeline import build_index
from qa_service.settings import Settings
from tests.fakes import HashingEmbedder
settings = Settings(_env_file=None, corpus_dir=Path(sys.argv[1]), index_dir=Path(sys.argv[2]),
                    model=HashingEmbedder().name, keep_builds=2)
while True:
    build_index(settings, HashingEmbedder())
    print("published", flush=True)
"""


def test_killing_a_build_at_any_moment_leaves_a_loadable_index(built_settings: Settings) -> None:
    """Builds run back to back in a subprocess that gets kill -9 at varied moments (mid-write,
    mid-publish, mid-prune); the index must always load, and the next build must succeed."""
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    args = [sys.executable, "-c", BUILDER, str(built_settings.corpus_dir), str(built_settings.index_dir)]
    for _ in range(6):
        builder = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, env=env)
        assert builder.stdout is not None
        builder.stdout.readline()  # the interpreter is up and one build went through
        time.sleep(rng.uniform(0.0, 0.3))
        builder.send_signal(signal.SIGKILL)
        builder.wait()
        builder.stdout.close()
        index = load_index(built_settings.index_dir, model=built_settings.model)  # checksums verified
        assert len(index.entries) == 7
    build_index(built_settings, HashingEmbedder())  # leftovers of killed builds do not get in the way
    assert not [p for p in (built_settings.index_dir / BUILDS_DIR).iterdir() if p.name.startswith(".tmp-")]


def test_swapping_the_index_under_load_drops_no_request(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    client = client_for(admin_settings.model_copy(update={"rate_limit_per_minute": 0}))
    old = answer_of(client)
    stop = threading.Event()
    results: list[tuple[int, str]] = []

    def load() -> None:
        while not stop.is_set():
            response = client.post("/v1/ask", json={"question": QUESTION})
            body = response.json()
            results.append((response.status_code, (body.get("answer") or {}).get("answer", "")))

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    try:
        time.sleep(0.3)
        publish(admin_settings, fake_embedder, "The new answer, served without a restart.")
        assert client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200
        time.sleep(0.3)
    finally:
        stop.set()
        for worker in workers:
            worker.join()
    assert len(results) > 20 and all(status == 200 for status, _ in results)
    answers = [answer for _, answer in results]
    assert answers[0] == old and answers[-1] == "The new answer, served without a restart."
    assert set(answers) == {old, "The new answer, served without a restart."}


def test_the_model_is_loaded_on_threads_that_end_with_the_load(admin_settings: Settings) -> None:
    """A thread that has run the model's (OpenMP) code keeps a team of helper threads while it lives,
    and a second team beside the batcher's halved the encoder's speed: loading, at start-up and on
    every reload, happens on a thread of its own that ends with it, never on a pooled thread."""
    loaders: list[threading.Thread] = []

    class Recording(HashingEmbedder):
        def load(self) -> None:
            loaders.append(threading.current_thread())
            super().load()

    embedder = Recording()
    from qa_service.api.app import create_app

    with TestClient(create_app(admin_settings, embedder=embedder)) as client:
        publish(admin_settings, HashingEmbedder(), "Usually a few days; see a clinician if it lasts longer.")
        response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
        assert response.status_code == 200 and response.json()["reloaded"] is True
        assert answer_of(client).startswith("Usually a few days")
        assert len(loaders) == 2  # start-up and the reload
        for thread in loaders:
            thread.join(5)
            assert thread.name == "qa-loader" and not thread.is_alive()


def corrupt(settings: Settings, build_id: str) -> None:
    with (settings.index_dir / BUILDS_DIR / build_id / VECTORS).open("ab") as handle:
        handle.write(b"corruption")


def test_a_service_started_on_a_broken_published_build_serves_the_previous_one(
    built_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    """A replica restarted while CURRENT names a build it cannot load serves the newest earlier build
    that loads, says so, and switches once a loadable build is published."""
    good = current_build_id(built_settings.index_dir)
    broken = publish(built_settings, fake_embedder, "A changed answer that must not be served.")
    corrupt(built_settings, broken)

    client = client_for(built_settings.model_copy(update={"reload_poll_seconds": 0.05}))
    ready = client.get("/readyz")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["index"]["build_id"] == good and body["published_build"] == broken
    assert broken in body["fallback"] and good in body["fallback"]
    assert "checksum" in body["last_reload_error"]
    assert answer_of(client) != "A changed answer that must not be served."
    metrics = client.get("/metrics").text
    assert "qa_index_fallback 1.0" in metrics and f'qa_index_info{{build_id="{good}"' in metrics

    fixed = publish(built_settings, fake_embedder, "The repaired answer.")
    deadline = time.monotonic() + 10
    while client.get("/readyz").json()["index"]["build_id"] != fixed and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.get("/readyz").json()
    assert body["index"]["build_id"] == body["published_build"] == fixed
    assert body["fallback"] is None and body["last_reload_error"] is None
    assert answer_of(client) == "The repaired answer."
    assert "qa_index_fallback 0.0" in client.get("/metrics").text


def test_a_rollback_to_the_fallback_build_clears_the_fallback(
    built_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    good = current_build_id(built_settings.index_dir)
    corrupt(built_settings, publish(built_settings, fake_embedder, "Broken."))
    client = client_for(built_settings.model_copy(update={"reload_poll_seconds": 0.05}))
    assert client.get("/readyz").json()["fallback"] is not None
    assert main(["rollback", "--index-dir", str(built_settings.index_dir), "--model", built_settings.model]) == 0
    deadline = time.monotonic() + 10
    while client.get("/readyz").json()["fallback"] is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    body = client.get("/readyz").json()
    assert body["fallback"] is None and body["index"]["build_id"] == body["published_build"] == good


def test_errors_never_show_the_servers_folders(
    built_settings: Settings, client_for: Callable[[Settings], TestClient]
) -> None:
    """With no earlier build to fall back on, a broken build gives 503, naming the file within the
    index folder (for the operator) but not the server's path to it."""
    corrupt(built_settings, current_build_id(built_settings.index_dir))
    client = client_for(built_settings)
    for path, request in (("/readyz", {}), ("/v1/ask", {"json": {"question": QUESTION}})):
        response = client.request("GET" if not request else "POST", path, **request)
        assert response.status_code == 503, response.text
        assert f"builds/{current_build_id(built_settings.index_dir)}/{VECTORS}: checksum mismatch" in response.text
        assert str(built_settings.index_dir.parent) not in response.text


def test_a_build_not_visible_yet_is_tried_again(
    admin_settings: Settings, fake_embedder: HashingEmbedder, client_for: Callable[[Settings], TestClient]
) -> None:
    """On shared storage CURRENT can name a build whose folder this machine does not see yet: that
    is not a refusal for good, the watcher tries again."""
    client = client_for(admin_settings.model_copy(update={"reload_poll_seconds": 0.05}))
    new = publish(admin_settings, fake_embedder, "Seen once the folder appears.")
    hidden = admin_settings.index_dir / BUILDS_DIR / f".hidden-{new}"
    (admin_settings.index_dir / BUILDS_DIR / new).rename(hidden)
    response = client.post("/v1/admin/reload", headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 409
    hidden.rename(admin_settings.index_dir / BUILDS_DIR / new)
    deadline = time.monotonic() + 10
    while answer_of(client) != "Seen once the folder appears." and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/readyz").json()["index"]["build_id"] == new
