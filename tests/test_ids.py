"""Instance and task ids: their shape, their order, and no repeats across threads and forks."""
from __future__ import annotations

import os
import threading

from zenaton_runtime.instances import new_id, new_task_id


def test_ids_are_32_hex_digits_and_task_ids_sort_in_creation_order() -> None:
    ids = [new_task_id() for _ in range(1000)]
    assert all(len(i) == 32 and int(i, 16) >= 0 for i in ids + [new_id()])
    assert [i[:13] for i in ids] == sorted(i[:13] for i in ids)  # the time part never goes back
    assert len(set(ids)) == 1000


def test_threads_never_share_task_ids() -> None:
    seen: list[list[str]] = [[] for _ in range(4)]

    def make(out: list[str]) -> None:
        out.extend(new_task_id() for _ in range(5000))

    threads = [threading.Thread(target=make, args=(out,)) for out in seen]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len({i for out in seen for i in out}) == 20_000


def test_a_forked_process_draws_other_random_bits() -> None:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its next id, to the parent
        os.write(write, new_task_id()[13:].encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 19 and child != new_task_id()[13:]
