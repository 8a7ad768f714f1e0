from typing import Any

from django.core.management.base import BaseCommand

from authorizers.rotation import encryption_keys_rotate


class Command(BaseCommand):
    help = (
        "Re-encrypt every stored secret with the first key of FIELD_ENCRYPTION_KEYS. "
        "Put the new key first, keep the old ones listed, run this, then drop the old keys."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        counts = encryption_keys_rotate()
        for label, count in counts.items():
            self.stdout.write(f"{label}: {count} re-encrypted")
        self.stdout.write(self.style.SUCCESS(f"done: {sum(counts.values())} values now under the primary key"))
