"""Helpers for AsyncClient, called from the native module."""


def resolve(future, ok, value):
    """Completes `future` on its event loop (scheduled there with
    call_soon_threadsafe) unless it was cancelled meanwhile."""
    if future.done():
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def watch_cancel(future, abort):
    """Calls `abort()` (cancels the Rust operation) if `future` is cancelled."""

    def done(fut):
        if fut.cancelled():
            abort()

    future.add_done_callback(done)
