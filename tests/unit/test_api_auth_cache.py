"""AuthCache: remembers valid principals by secret digest, forgets them on invalidation."""

import time

from api.security import AuthCache, hash_secret


def test_hit_until_ttl_then_miss():
    cache = AuthCache(ttl_s=0.05)
    digest = hash_secret("k")
    cache.put("finance", digest, "user", cache.generation())
    assert cache.get("finance", digest) == "user"
    assert cache.get("ocpi", digest) is None  # kinds are separate
    time.sleep(0.06)
    assert cache.get("finance", digest) is None


def test_invalidate_drops_entries_and_refuses_a_lookup_started_before_it():
    cache = AuthCache(ttl_s=60)
    digest = hash_secret("k")
    cache.put("finance", digest, "user", cache.generation())
    started = cache.generation()  # a look-up reads the database from here ...
    cache.invalidate()  # ... a change to keys is committed meanwhile
    assert cache.get("finance", digest) is None
    cache.put("finance", digest, "old answer", started)
    assert cache.get("finance", digest) is None


def test_ttl_zero_disables():
    cache = AuthCache(ttl_s=0)
    cache.put("ocpi", "d", "client", cache.generation())
    assert cache.get("ocpi", "d") is None
