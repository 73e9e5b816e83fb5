"""J-LIS staff administer everything (providers, card APs, operators): the role itself carries
every admin permission, so nobody has to remember to tick "superuser" for them."""
from __future__ import annotations

from typing import Any

from django.contrib.auth.backends import BaseBackend

from operators import policy


class JLISRoleBackend(BaseBackend):
    def _is_jlis(self, user_obj: Any) -> bool:
        return policy.is_jlis(user_obj)

    def has_perm(self, user_obj: Any, perm: str, obj: Any = None) -> bool:
        return self._is_jlis(user_obj)

    def has_module_perms(self, user_obj: Any, app_label: str) -> bool:
        return self._is_jlis(user_obj)
