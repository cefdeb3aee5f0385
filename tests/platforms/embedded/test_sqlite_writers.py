"""The SQLite writers' queue: one writer at a time across threads and forked processes."""

from __future__ import annotations

import multiprocessing
import threading
import time
from pathlib import Path

from flask_psp_connector.platforms.embedded.database import Database
from flask_psp_connector.platforms.embedded.sqlite_writers import WriterQueue


def _take_turns(queue: WriterQueue, log: Path, rounds: int) -> None:
    for _ in range(rounds):
        with queue.turn():
            with log.open("a") as out:
                out.write("enter\n")
                out.flush()
                time.sleep(0.002)
                out.write("leave\n")


def _assert_never_overlapped(log: Path, expected_turns: int) -> None:
    lines = log.read_text().split()
    assert len(lines) == 2 * expected_turns
    assert lines == ["enter", "leave"] * expected_turns


def test_forked_workers_and_threads_never_write_at_once(tmp_path: Path) -> None:
    queue = WriterQueue(str(tmp_path / "store.sqlite3"))
    log = tmp_path / "turns.log"
    with queue.turn():  # the parent opened its lock file before forking, as a preloading server would
        pass
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_take_turns, args=(queue, log, 20)) for _ in range(3)]
    threads = [threading.Thread(target=_take_turns, args=(queue, log, 20)) for _ in range(2)]
    for worker in (*workers, *threads):
        worker.start()
    for worker in (*workers, *threads):
        worker.join()
    assert all(worker.exitcode == 0 for worker in workers)
    _assert_never_overlapped(log, 5 * 20)


def test_only_a_sqlite_file_gets_a_queue(tmp_path: Path) -> None:
    assert Database.from_url(f"sqlite:///{tmp_path / 'a.sqlite3'}").queues_writers
    assert not Database.from_url("sqlite://").queues_writers
