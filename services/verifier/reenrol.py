"""python -m services.verifier.reenrol CALLER USER [USER ...]

After a verifier model upgrade: new templates for these users of relying party
CALLER (its name in HWOTP_API_KEYS) from their kept enrolment images
(HWOTP_STORE_ENROLMENT_IMAGES was on when they enrolled), without asking them
to write again. Runs with the verifier's settings and the gateway's
HWOTP_SUBJECT_KEY.
"""

import sys
from dataclasses import dataclass

from hwotp import config, redis_client
from hwotp.errors import NotFound
from hwotp.metrics import Metrics
from hwotp.models import ModelBundle
from hwotp.sealing import Sealer
from hwotp.subjects import Subjects, parse_key
from services.verifier.templates import TemplateStore
from services.verifier.verification import WriterVerifier


@dataclass(frozen=True)
class ReenrolSettings(config.VerifierSettings, config.SubjectSettings):
    """The verifier's settings, and the gateway's key that makes subjects of user ids."""


def main() -> None:
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    settings = config.load(ReenrolSettings)
    subjects = Subjects(parse_key(settings.subject_key))
    store = TemplateStore(redis_client.connect(settings),
                          Sealer.from_settings(settings.template_keys, settings.template_key_id),
                          settings.replay_history_days)
    verifier = WriterVerifier(ModelBundle.load(settings.models_dir or None), store, Metrics("reenrol"),
                              settings.writer_policy, keep_images=True)
    caller, failed = sys.argv[1], 0
    for user in sys.argv[2:]:
        try:
            templates = verifier.reenrol(subjects.of(caller, user))
            print(f"{user}: re-enrolled from {templates.samples} kept images with {templates.model_version}")
        except NotFound as exc:
            failed += 1
            print(f"{user}: {exc}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
