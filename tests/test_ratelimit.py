"""The flood rule (signaling/ratelimit.py) with a fake clock: no timing in these tests."""

from __future__ import annotations

from signaling.ratelimit import FloodRule, TokenBucket, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_bucket_allows_the_burst_then_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(20.0, 40, clock)
    assert sum(bucket.take() for _ in range(100)) == 40
    assert bucket.refused_in_a_row == 60
    clock.now += 0.5  # 10 tokens
    assert sum(bucket.take() for _ in range(100)) == 10
    clock.now += 1000  # refills to the burst, never above it
    assert sum(bucket.take() for _ in range(100)) == 40


def test_a_clock_going_backwards_adds_no_tokens() -> None:
    clock = Clock()
    clock.now = 10.0
    bucket = TokenBucket(1.0, 1, clock)
    assert bucket.take()
    clock.now = 5.0
    assert not bucket.take()


def test_a_client_that_backs_off_is_never_disconnected() -> None:
    clock = Clock()
    rule = FloodRule(1.0, 2, 10, clock=clock)
    assert [rule.check() for _ in range(2 + 9)] == [Verdict.ACCEPT] * 2 + [Verdict.REFUSE] * 9
    clock.now += 1.0  # one token: the count of refusals in a row starts again
    assert rule.check() is Verdict.ACCEPT
    assert [rule.check() for _ in range(9)] == [Verdict.REFUSE] * 9
    assert not rule.tripped


def test_the_limit_th_refusal_in_a_row_disconnects_once() -> None:
    clock = Clock()
    rule = FloodRule(1.0, 2, 10, clock=clock)
    verdicts = [rule.check() for _ in range(2 + 10)]
    assert verdicts == [Verdict.ACCEPT] * 2 + [Verdict.REFUSE] * 9 + [Verdict.DISCONNECT]
    assert rule.tripped
    clock.now += 100.0  # once tripped, nothing more is accepted on this connection
    assert [rule.check() for _ in range(3)] == [Verdict.REFUSE] * 3
