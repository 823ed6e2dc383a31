#!/usr/bin/env python3
"""Adds lockfile entries for optional platform packages that the registry mirror here does
not serve (e.g. @swc/core-darwin-arm64). npm leaves them out of package-lock.json, and
`npm ci` then refuses the lock as out of sync. Each stub names the platform, so npm skips it
on others and fetches it by version where it applies. Run after `npm install` changes the lock."""
import json, re, sys

OS = {'darwin': 'darwin', 'linux': 'linux', 'win32': 'win32', 'freebsd': 'freebsd'}
CPU = {'arm64': 'arm64', 'x64': 'x64', 'arm': 'arm', 'ia32': 'ia32', 'ppc64': 'ppc64', 's390x': 's390x', 'riscv64': 'riscv64'}

path = sys.argv[1] if len(sys.argv) > 1 else 'package-lock.json'
lock = json.load(open(path))
packages = lock['packages']
added = 0
for where, info in list(packages.items()):
    for dep, version in (info.get('optionalDependencies') or {}).items():
        if f'{where}/node_modules/{dep}' in packages or f'node_modules/{dep}' in packages:
            continue
        tail = dep.split('/')[-1]
        os_ = next((v for k, v in OS.items() if re.search(rf'-{k}(-|$)', tail)), None)
        cpu = next((v for k, v in CPU.items() if re.search(rf'-{k}(-|$)', tail)), None)
        if not os_ or not cpu:
            sys.exit(f'cannot tell the platform of {dep}; add its entry by hand')
        packages[f'node_modules/{dep}'] = {'version': version, 'cpu': [cpu], 'optional': True, 'os': [os_]}
        added += 1
json.dump(lock, open(path, 'w'), indent=2)
open(path, 'a').write('\n')
print(f'{added} platform stub(s) added')
