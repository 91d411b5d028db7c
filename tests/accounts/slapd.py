"""A real OpenLDAP server (Debian's slapd, installed by `make test`) on a loopback port, loaded
from an LDIF of people and (nested) groups, for the directory tests and bench/directory.

People are inetOrgPerson entries under ou=people; groups are groupOfNames under ou=groups,
whose `member` values name people or other groups. A disabled person carries
`employeeType: disabled` (OpenLDAP has no account-disabled flag of its own; Active Directory's
is the default filter, which the tests replace with this one)."""

from __future__ import annotations

import ipaddress
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import ldap3
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.processes import free_port

SLAPD = shutil.which("slapd") or "/usr/sbin/slapd"
SLAPADD = shutil.which("slapadd") or "/usr/sbin/slapadd"
BASE = "dc=example,dc=org"
ADMIN = f"cn=admin,{BASE}"
ADMIN_PASSWORD = "directory-secret"
PEOPLE = f"ou=people,{BASE}"
GROUPS = f"ou=groups,{BASE}"
DISABLED_FILTER = "(employeeType=disabled)"

_CONFIG = """\
include /etc/ldap/schema/core.schema
include /etc/ldap/schema/cosine.schema
include /etc/ldap/schema/inetorgperson.schema
modulepath /usr/lib/ldap
moduleload back_mdb
pidfile {root}/slapd.pid
sizelimit unlimited
database mdb
suffix "{base}"
rootdn "{admin}"
rootpw {password}
directory {root}/data
maxsize 4294967296
index objectClass eq
index member eq
index uid eq
index entryUUID eq
"""


def person_dn(uid: str) -> str:
    return f"uid={uid},{PEOPLE}"


def group_dn(name: str) -> str:
    return f"cn={name},{GROUPS}"


@dataclass
class Tree:
    """People (uid -> password, disabled) and groups (name -> member uids and group names)."""

    people: dict[str, str] = field(default_factory=dict)
    disabled: set[str] = field(default_factory=set)
    groups: dict[str, tuple[list[str], list[str]]] = field(default_factory=dict)

    def ldif(self) -> str:
        entries = [
            f"dn: {BASE}\nobjectClass: dcObject\nobjectClass: organization\no: Example\n"
            "dc: example\n",
            f"dn: {PEOPLE}\nobjectClass: organizationalUnit\nou: people\n",
            f"dn: {GROUPS}\nobjectClass: organizationalUnit\nou: groups\n",
        ]
        for uid, password in self.people.items():
            entries.append(
                f"dn: {person_dn(uid)}\nobjectClass: inetOrgPerson\nuid: {uid}\n"
                f"cn: {uid.title()} Person\ngivenName: {uid.title()}\nsn: Person\n"
                f"mail: {uid}@example.org\nuserPassword: {password}\n"
                + ("employeeType: disabled\n" if uid in self.disabled else "")
            )
        for name, (people, groups) in self.groups.items():
            members = [person_dn(p) for p in people] + [group_dn(g) for g in groups]
            # groupOfNames needs a member: an empty group names its own DN (as AD tools do).
            members = members or [group_dn(name)]
            entries.append(
                f"dn: {group_dn(name)}\nobjectClass: groupOfNames\ncn: {name}\n"
                + "".join(f"member: {m}\n" for m in members)
            )
        return "\n".join(entries)


class Slapd:
    """One slapd process; `start` loads `tree` first (slapadd, offline: fast for 10k people)."""

    def __init__(self, root: Path, *, tls: bool = False):
        """`tls`: also serve LDAPS on `ldaps_url` (and StartTLS on `url`) with a certificate
        for 127.0.0.1 signed by a CA of its own, written to `ca_file`."""
        self.root = root
        self.port = free_port()
        self.url = f"ldap://127.0.0.1:{self.port}"
        self.tls = tls
        self.ldaps_url = f"ldaps://127.0.0.1:{free_port()}" if tls else ""
        self.ca_file = root / "ca.pem"
        self.process: subprocess.Popen | None = None

    def start(self, tree: Tree) -> None:
        if not Path(SLAPD).exists():
            raise RuntimeError(f"slapd is not installed at {SLAPD}: `make test` installs it.")
        shutil.rmtree(self.root, ignore_errors=True)
        (self.root / "data").mkdir(parents=True)
        config = self.root / "slapd.conf"
        text = _CONFIG.format(root=self.root, base=BASE, admin=ADMIN, password=ADMIN_PASSWORD)
        if self.tls:
            text = self._certificates() + text
        config.write_text(text)
        ldif = self.root / "tree.ldif"
        ldif.write_text(tree.ldif())
        subprocess.run([SLAPADD, "-q", "-f", str(config), "-l", str(ldif)], check=True)
        self.process = subprocess.Popen(
            [
                SLAPD,
                "-d",
                "0",
                "-f",
                str(config),
                "-h",
                " ".join(f"{url}/" for url in (self.url, self.ldaps_url) if url),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                self.connection().unbind()
                return
            except ldap3.core.exceptions.LDAPException as exc:
                if self.process.poll() is not None:
                    stderr = self.process.stderr.read().decode()
                    raise RuntimeError(f"slapd exited: {stderr}") from exc
                time.sleep(0.05)
        raise RuntimeError("slapd did not answer within 15 s")

    def _certificates(self) -> str:
        """A CA and a server certificate for 127.0.0.1 (PEM files), as slapd.conf lines."""
        now = datetime.now(UTC)

        def certificate(subject, issuer, key, signer, *, ca: bool):
            builder = (
                x509.CertificateBuilder()
                .subject_name(subject)
                .issuer_name(issuer)
                .public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - timedelta(minutes=5))
                .not_valid_after(now + timedelta(days=1))
                .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            )
            if not ca:
                names = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                         x509.DNSName("localhost")]  # fmt: skip
                builder = builder.add_extension(x509.SubjectAlternativeName(names), False)
            return builder.sign(signer, hashes.SHA256())

        def name(common: str) -> x509.Name:
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])

        ca_key, key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(2))
        ca = certificate(name("test directory CA"), name("test directory CA"), ca_key, ca_key,
                         ca=True)  # fmt: skip
        server = certificate(name("127.0.0.1"), ca.subject, key, ca_key, ca=False)
        self.ca_file.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
        (self.root / "server.pem").write_bytes(server.public_bytes(serialization.Encoding.PEM))
        (self.root / "server.key").write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        return (
            f"TLSCACertificateFile {self.ca_file}\n"
            f"TLSCertificateFile {self.root / 'server.pem'}\n"
            f"TLSCertificateKeyFile {self.root / 'server.key'}\n"
        )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=10)

    def connection(self) -> ldap3.Connection:
        return ldap3.Connection(
            ldap3.Server(self.url, get_info=ldap3.NONE),
            ADMIN,
            ADMIN_PASSWORD,
            auto_bind=True,
            raise_exceptions=True,
        )

    def settings(self) -> dict:
        """settings.LDAP for this server."""
        return {
            "url": self.url,
            "start_tls": False,
            "ca_file": "",
            "bind_dn": ADMIN,
            "bind_password": ADMIN_PASSWORD,
            "user_base": PEOPLE,
            "user_filter": "(objectClass=inetOrgPerson)",
            "disabled_filter": DISABLED_FILTER,
            "username_attribute": "uid",
            "id_attribute": "entryUUID",
            "group_base": GROUPS,
            "group_filter": "(objectClass=groupOfNames)",
            "group_name_attribute": "cn",
            "timeout": 5,
        }

    # Changes the directory's own administrators make, in the tests.

    def member_remove(self, group: str, member_dn: str) -> None:
        with self.connection() as connection:
            connection.modify(group_dn(group), {"member": [(ldap3.MODIFY_DELETE, [member_dn])]})

    def member_add(self, group: str, member_dn: str) -> None:
        with self.connection() as connection:
            connection.modify(group_dn(group), {"member": [(ldap3.MODIFY_ADD, [member_dn])]})

    def disable(self, uid: str) -> None:
        with self.connection() as connection:
            connection.modify(
                person_dn(uid), {"employeeType": [(ldap3.MODIFY_REPLACE, ["disabled"])]}
            )

    def delete(self, dn: str) -> None:
        with self.connection() as connection:
            connection.delete(dn)
