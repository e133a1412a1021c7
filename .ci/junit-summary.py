#!/usr/bin/env python3
"""Reads tap's JUnit report and prints, per test file, its counts, then each failure with its
message, and last one line `tap: P passed, F failed, S skipped` for .ci/run to read.
Counts are tap's own: the <testsuites> element's tests/failures/skipped attributes."""
import sys
import xml.etree.ElementTree as ET

path = sys.argv[1]
try:
    root = ET.parse(path).getroot()
except (OSError, ET.ParseError) as e:
    print(f"tap: no readable JUnit report at {path}: {e}")
    print("tap: 0 passed, 1 failed, 0 skipped")
    sys.exit(0)

for suite in root.findall('testsuite'):
    print(f"  {suite.get('name')}: {suite.get('tests')} tests, {suite.get('failures')} failed, {suite.get('skipped')} skipped, {float(suite.get('time') or 0):.1f} s")


def failures(node, trail):
    for child in node:
        if child.tag in ('testsuite', 'testcase'):
            yield from failures(child, trail + [child.get('name') or ''])
        elif child.tag in ('failure', 'error'):
            yield ' > '.join(t for t in trail if t), (child.get('message') or '') + '\n' + (child.text or '')


shown = 0
for where, text in failures(root, []):
    if shown == 0:
        print('\nfailures:')
    shown += 1
    if shown <= 50:
        print(f"- {where}\n    " + '\n    '.join(text.strip().splitlines()[:20]))

tests = int(root.get('tests') or 0)
failed = int(root.get('failures') or 0) + int(root.get('errors') or 0)
skipped = int(root.get('skipped') or 0)
if root.get('tests') is None:
    failed = max(failed, 1)
print(f"tap: {tests - failed - skipped} passed, {failed} failed, {skipped} skipped")
