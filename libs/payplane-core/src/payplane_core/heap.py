"""Keep the cyclic garbage collector off what a service built while starting.

CPython's collector walks every tracked object of a generation it collects. After start-up a
service holds hundreds of thousands of long-lived ones (imported modules, SQLAlchemy and
pydantic metadata, FastAPI's routes), so each full collection took 100-250 ms here: CPU spent
on objects that never become garbage, and a pause of every request in flight. ``gc.freeze()``
moves them to a permanent generation the collector skips; what is created later is collected
as before, so cyclic garbage made while serving is still freed.
"""

import gc


def freeze_startup_objects() -> None:
    """Once per process, when start-up is done: collect its garbage, exempt the survivors.

    Only if nothing is frozen yet: a process that starts several apps (the tests) would
    otherwise keep every one of them for ever, frozen objects being out of the collector's reach.
    """
    if gc.get_freeze_count():
        return
    gc.collect()
    gc.freeze()
