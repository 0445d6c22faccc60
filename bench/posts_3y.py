#!/usr/bin/env python3
"""Writes issue 15's real-shaped posts case: 500,000 posts over three years about the shipped pipeline's five
tokens, with daily bars for them, seeded.

    python3 bench/posts_3y.py OUT_DIR [POSTS]

OUT_DIR/tweets.jsonl holds the posts in time order (X-shaped: id, author, followers, text, time, engagement;
about 300 bytes a line, 2,000 accounts, a third of them above the pipeline's 10,000-follower floor, a few
cashtags or names per post, phrases from positive, negative and neutral templates); OUT_DIR/bars.csv holds
one daily bar per token over the same three years.
"""
import json
import os
import random
import sys

out = sys.argv[1]
posts = int(sys.argv[2]) if len(sys.argv) > 2 else 500_000
start_ms = 1_640_995_200_000  # 2022-01-01T00:00:00Z
days = 3 * 365
day = 86_400_000
rng = random.Random(1503)
tokens = ["AXL", "BOLT", "CRUX", "DOGX", "PEPX"]
names = {"BOLT": "boltchain"}
os.makedirs(out, exist_ok=True)

with open(os.path.join(out, "bars.csv"), "w") as f:
    f.write("token,timestamp,open,high,low,close,volume\n")
    for t in tokens:
        p = rng.uniform(0.5, 50)
        for d in range(days):
            o = p
            p = max(p * (1 + rng.gauss(0, 0.04)), 0.0001)
            h = max(o, p) * (1 + abs(rng.gauss(0, 0.01)))
            l = min(o, p) * (1 - abs(rng.gauss(0, 0.01)))
            f.write(f"{t},{start_ms + d * day},{o:.6f},{h:.6f},{l:.6f},{p:.6f},{rng.uniform(1e4, 1e6):.2f}\n")

positive = [
    "{c} is breaking out, this chart looks amazing and the team keeps shipping",
    "loaded more {c} today, strong community and great fundamentals, bullish",
    "{c} partnership news is huge, love where this is going",
    "accumulating {c} on every dip, best risk reward in the market right now",
]
negative = [
    "{c} looks terrible here, weak volume and the devs are silent, I'm out",
    "sold all my {c}, this is a rug waiting to happen, be careful",
    "{c} keeps bleeding, awful tokenomics and nobody is buying",
    "stay away from {c}, the unlock will crush it",
]
neutral = [
    "anyone watching {c} today? wondering what the next move is",
    "{c} volume report for the week, numbers below",
    "thread on {c} governance vote, read before you decide",
]
accounts = [(f"{9_100_000 + i}", f"caller_{i:04d}", int(10 ** rng.uniform(2.5, 6.5))) for i in range(2_000)]
times = sorted(rng.randrange(start_ms, start_ms + days * day) for _ in range(posts))
with open(os.path.join(out, "tweets.jsonl"), "w") as f:
    for n, t in enumerate(times):
        aid, handle, followers = accounts[rng.randrange(len(accounts))]
        named = rng.sample(tokens, rng.choice([1, 1, 1, 2]))
        cash = " and ".join(f"${x}" if rng.random() < 0.85 or x not in names else names[x] for x in named)
        mood = rng.random()
        pool = positive if mood < 0.45 else negative if mood < 0.75 else neutral
        text = rng.choice(pool).format(c=cash)
        iso = (
            f"{__import__('datetime').datetime.utcfromtimestamp(t / 1000):%Y-%m-%dT%H:%M:%S}.{t % 1000:03d}Z"
        )
        f.write(
            json.dumps(
                {
                    "id": str(1_800_000_000_000_000_000 + n),
                    "author_id": aid,
                    "author_handle": handle,
                    "followers": followers,
                    "text": text,
                    "created_at": iso,
                    "engagement": {
                        "likes": rng.randrange(0, 500),
                        "retweets": rng.randrange(0, 100),
                        "replies": rng.randrange(0, 50),
                        "quotes": rng.randrange(0, 10),
                    },
                },
                separators=(",", ":"),
            )
            + "\n"
        )
