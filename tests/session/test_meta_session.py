"""Meta commands in one in-process session: pipelined meta gets of large values are answered
in reply batches (the rest waits as the session's backlog), so a few bytes of requests never
make the session hold more than about one batch of replies."""

from __future__ import annotations

from memcloud.service import REPLY_BATCH_MAX
from memcloud.text_session import TextSession

from .support import answer, new_service


def test_pipelined_meta_gets_are_answered_in_batches() -> None:
    session = TextSession(new_service(), "127.0.0.1:1", lambda: None)
    value = b"v" * 1000
    assert session.handle(b"ms big %d\r\n%s\r\n" % (len(value), value)) == b"HD\r\n"
    count = 3 * REPLY_BATCH_MAX // len(value)
    requests = b"mg big v\r\n" * count + b"mn\r\n"
    first = session.handle(requests)
    assert session.backlog
    # the batch counts value bytes, as for the text get: about one batch, not all three
    assert REPLY_BATCH_MAX <= len(first) <= REPLY_BATCH_MAX * 1.05
    rest = answer(session, [b""])
    one = b"VA %d\r\n%s\r\n" % (len(value), value)
    assert first + rest == one * count + b"MN\r\n"
