"""The bot's one consumer of job events: read the stream, post each outcome, ack after posting.

XREADGROUP on redis.asyncio, so waiting for jobs costs no thread and never blocks the event loop (no
AsyncResult.get anywhere; docs §C). Entries taken but not acked (a crash mid-post, a post to retry) are
read again from the group's pending list, after a restart as well.
"""
from __future__ import annotations

import asyncio
import logging

from redis.exceptions import RedisError

from tasks import store

log = logging.getLogger(__name__)

BLOCK_MS = 5000
RETRY_BACKOFF_S = (1, 2, 5, 10, 30)


class JobEventConsumer:
    def __init__(self, redis, poster, group: str, consumer: str) -> None:
        self.redis, self.poster, self.group, self.consumer = redis, poster, group, consumer
        self.reread_pending = True   # at start: what this consumer took before it stopped
        self.failures = 0

    async def run(self) -> None:
        while True:
            try:
                await store.ensure_event_group(self.redis, self.group)
                events = await self._read()
                self.failures = 0
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as e:
                await self._back_off(f"reading job events failed: {e}")
                continue
            for event in events:
                try:
                    await self._handle(event)
                except (RedisError, OSError) as e:   # the ack itself failed: the entry stays pending
                    self.reread_pending = True
                    await self._back_off(f"acking job {event.job_id} failed: {e}")
                    break

    async def _read(self) -> list[store.JobEvent]:
        if self.reread_pending:
            pending = await store.read_events(self.redis, self.group, self.consumer, pending=True)
            if pending:
                return pending
            self.reread_pending = False
        return await store.read_events(self.redis, self.group, self.consumer, BLOCK_MS)

    async def _handle(self, event: store.JobEvent) -> None:
        if not event.job_id:
            await store.ack_event(self.redis, self.group, event)   # trimmed from the stream: nothing to post
            return
        try:
            posted = await self.poster.post(event)
        except asyncio.CancelledError:
            raise
        except (RedisError, OSError) as e:
            posted = False
            log.warning("job %s: %s", event.job_id, e)
        except Exception:
            # A bug in posting must not wedge the stream; the job record keeps the outcome for support.
            log.exception("job %s: posting failed unexpectedly; giving up on it", event.job_id)
            posted = True
        if posted:
            await store.ack_event(self.redis, self.group, event)
        else:
            self.reread_pending = True   # unacked: read again from the pending list
            await self._back_off(f"job {event.job_id} not posted yet")

    async def _back_off(self, why: str) -> None:
        delay = RETRY_BACKOFF_S[min(self.failures, len(RETRY_BACKOFF_S) - 1)]
        self.failures += 1
        log.warning("%s; retrying in %ss", why, delay)
        await asyncio.sleep(delay)
