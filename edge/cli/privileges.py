"""Commands that open the gallery or its key run as the key's owner, even from root.

On a device the key lives in ``/etc/facegate/key`` (mode 0700, owned by the service
user) and ``read_key`` refuses a key that is not the caller's own. Run by root, a
command would be refused the key, and ``init`` or ``gallery rekey`` would leave
root-owned files that the service cannot read. So, as root, such a command first
becomes the owner of the key's folder (user, primary group and supplementary
groups), or refuses with the command to run instead. Where the folder belongs to
root or does not exist yet (a laptop, a test), nothing changes.
"""

from __future__ import annotations

import os
import pwd
import shlex
import sys
from pathlib import Path

from ..errors import RefusedError


def become_key_owner(key_file: str | Path) -> None:
    """As root, switch this process for good to the owner of ``key_file``'s folder."""
    if os.geteuid() != 0:
        return
    folder = Path(key_file).parent
    try:
        info = folder.stat()
    except OSError:
        return  # no installed layout: whoever runs init owns what it makes
    if info.st_uid == 0:
        return
    try:
        account = pwd.getpwuid(info.st_uid)
    except KeyError:
        account = None
    try:
        if account is not None:
            os.initgroups(account.pw_name, account.pw_gid)
            os.setgid(account.pw_gid)
        else:
            os.setgroups([])
            os.setgid(info.st_gid)
        os.setuid(info.st_uid)  # as root this also sets the saved uid: no way back
    except OSError as exc:
        user = account.pw_name if account is not None else f"uid {info.st_uid}"
        raise RefusedError(
            f"cannot become {user}, the owner of {folder} ({exc.strerror}); run as that user: "
            + shlex.join(["runuser", "-u", user, "--", *sys.argv])
        ) from None
