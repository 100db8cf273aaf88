# Reads JSON lines on stdin and rejects any line that is not one JSON object with unique
# keys at every level (what Elasticsearch and Fluent Bit require). Prints one line per
# problem; exit 0 when there is none, 1 otherwise.
import json
import sys


def unique(pairs):
    keys = [key for key, _ in pairs]
    duplicates = sorted({key for key in keys if keys.count(key) > 1})
    if duplicates:
        raise ValueError(f"duplicate keys {duplicates}")
    return dict(pairs)


problems = 0
for number, line in enumerate(sys.stdin, 1):
    try:
        value = json.loads(line, object_pairs_hook=unique)
        if not isinstance(value, dict):
            raise ValueError("not an object")
    except ValueError as error:
        problems += 1
        print(f"line {number}: {error}: {line.strip()[:300]}")
sys.exit(1 if problems else 0)
