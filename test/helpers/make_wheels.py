"""Builds pure-Python wheels of small packages into a folder (there is no PyPI here):

    python3 make_wheels.py OUT_DIR '[{"name": "pkg", "version": "1.0", "source": "...", "requires": []}]'

A wheel is a zip of the module and its .dist-info, written with Python's own zipfile. Used by
the tests (test/helpers/wheels.ts) and the bench (bench/environments.mjs).
"""
import base64, hashlib, json, os, sys, zipfile
out, packages = sys.argv[1], json.loads(sys.argv[2])
for p in packages:
    dist = p['name'].replace('-', '_')
    info = '%s-%s.dist-info' % (dist, p['version'])
    files = {
        '%s/__init__.py' % dist: p['source'],
        info + '/METADATA': 'Metadata-Version: 2.1\nName: %s\nVersion: %s\n%s' % (p['name'], p['version'], ''.join('Requires-Dist: %s\n' % r for r in p.get('requires', []))),
        info + '/WHEEL': 'Wheel-Version: 1.0\nGenerator: khd-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n',
    }
    record = []
    for path, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b'=').decode()
        record.append('%s,sha256=%s,%d' % (path, digest, len(data)))
    record.append(info + '/RECORD,,')
    files[info + '/RECORD'] = '\n'.join(record) + '\n'
    with zipfile.ZipFile(os.path.join(out, '%s-%s-py3-none-any.whl' % (dist, p['version'])), 'w') as z:
        for path, text in files.items():
            z.writestr(path, text)
