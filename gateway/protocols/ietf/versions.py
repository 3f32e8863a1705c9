"""The interop versions of draft-ietf-httpbis-resumable-upload this gateway
speaks, and what differs between them.

Each draft revision names an interop version (its "Draft Version
Identification" section); a client sends it in ``Upload-Draft-Interop-Version``:

    3  draft -01   (iOS 17 URLSession)
    4  draft -02
    5  draft -03   (iOS 18.0; tus-js-client ``protocol: 'ietf-draft-03'``)
    6  drafts -04, -05 (iOS 18.1+; tus-js-client ``'ietf-draft-05'``)
    7  drafts -06 … -08
    8  drafts -09 … -11
    9  draft -12 (July 2026; httpwg/http-extensions PR #3476, "Bump interop
       version to 9", 2026-07-05)
   10  draft -13 (6 October 2026). The number is not read in the draft
       itself (no text past -12's publication is stored here): it comes from
       a third-party capture of datatracker's -13 render ("draft interop
       version 10"). The one -13 change read (PR #3493, its changelog
       "Since -12" entry) is a relaxation: ``Upload-Complete`` and
       ``Upload-Length`` are no longer required on offset retrieval
       responses; the gateway still sends them (allowed), so 10 keeps 9's
       rules. Drafts -14 (October 2026) and -15 (2 November 2026) exist, but
       neither their interop number nor their changes could be read here;
       a client naming a later number is refused (400, no 104).

-12 changed nothing a server of -11 must do differently here: it drops the
requirement of ``Accept-Patch`` in OPTIONS (still sent: harmless), allows a
creation without content whatever ``min-append-size`` says (none is
announced), lets ``max-age`` decrease, answers a ``GET`` of an upload like
a ``HEAD`` (as the gateway does for every version), and reads
``Upload-Complete`` in a response as "this is the targeted resource's
answer" (?1 on a completion, ?0 on the protocol's own errors: what the
gateway sends).

A request with ``Upload-Complete`` but no ``Upload-Draft-Interop-Version`` is
answered by the newest rules (what a client of the final RFC will send), but
never with a 104: the drafts forbid it when the version is missing.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

INTEROP_HEADER = "Upload-Draft-Interop-Version"


@dataclass(frozen=True)
class Version:
    #: the interop number; None = no header (final-RFC style, no 104)
    number: int | None
    #: draft revisions with this number
    drafts: str
    #: interop 3 says ``Upload-Incomplete`` (inverted), later ones ``Upload-Complete``
    incomplete_header: bool = False
    #: PATCH bodies must be ``application/partial-upload`` (since -04)
    partial_upload_type: bool = True
    #: ``Upload-Limit`` exists (since -04)
    upload_limit: bool = True
    #: the Upload-Limit key of the remaining lifetime: ``expires`` (-04, -05), ``max-age`` (-06+)
    lifetime_key: str | None = "max-age"
    #: problem types mismatching-upload-offset and completed-upload (since -04)
    problem_types: bool = True
    #: problem type inconsistent-upload-length (since -06)
    inconsistent_length_type: bool = True
    #: HEAD and DELETE must not carry Upload-Offset / Upload-Complete (-01 … -05)
    strict_head_delete: bool = False
    #: status of a successful append that leaves the upload incomplete: the
    #: drafts up to -05 require 201, later ones any 2xx (their examples: 204)
    append_status: int = 204
    #: status of a request that completes the upload (-01 … -05 recommend
    #: 201; later ones the response of the resource that took the upload)
    complete_status: int = 200
    #: an unknown upload, or one that is no longer active: -01 … -05 require
    #: 404; later drafts leave it open and 410 says more (terminated/expired)
    gone_status: int = 410
    #: 104s with ``Upload-Offset`` while content arrives (since -03:
    #: "upload progress notifications via informational responses")
    progress_104: bool = True

    @property
    def complete_field(self) -> str:
        return "Upload-Incomplete" if self.incomplete_header else "Upload-Complete"

    def complete_value(self, complete: bool) -> str:
        """The response field value saying whether the upload is complete."""
        return "?1" if complete != self.incomplete_header else "?0"


#: what the drafts up to -03 (interop 3 to 5) share
_EARLY = Version(
    None,
    "",
    partial_upload_type=False,
    upload_limit=False,
    lifetime_key=None,
    problem_types=False,
    inconsistent_length_type=False,
    strict_head_delete=True,
    append_status=201,
    complete_status=201,
    gone_status=404,
    progress_104=False,
)

VERSIONS: dict[int, Version] = {
    3: replace(_EARLY, number=3, drafts="-01", incomplete_header=True),
    4: replace(_EARLY, number=4, drafts="-02"),
    5: replace(_EARLY, number=5, drafts="-03", progress_104=True),
    6: Version(
        6,
        "-04, -05",
        lifetime_key="expires",
        inconsistent_length_type=False,
        strict_head_delete=True,
        append_status=201,
        complete_status=201,
        gone_status=404,
    ),
    7: Version(7, "-06 … -08"),
    8: Version(8, "-09 … -11"),
    9: Version(9, "-12"),
    10: Version(10, "-13"),
}
NEWEST = VERSIONS[max(VERSIONS)]
#: the rules for a request without an interop version
UNVERSIONED = Version(None, f"newest ({NEWEST.drafts}), no 104")
SUPPORTED = ", ".join(str(n) for n in VERSIONS)
