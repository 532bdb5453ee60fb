"""client kinds, default scopes, private_key_jwt keys, refresh-family lifetimes

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-30 15:22:15.523734

Every existing client gets a kind: a client that skipped consent is first party; a
confidential client without redirect URIs is a machine client; every other one is a
third-party relying party. Third-party clients lose the client-credentials grant they were
given by default; machine clients keep only it; first-party clients keep what they had (the
website's back end uses client credentials). Each client's default scope is its scope. A
token family's start is the earliest issue time among its tokens.
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

_clients = sa.table(
    "oauth_clients",
    sa.column("id", sa.String),
    sa.column("kind", sa.String),
    sa.column("skip_consent", sa.Boolean),
    sa.column("is_public", sa.Boolean),
    sa.column("redirect_uris", sa.JSON),
    sa.column("grant_types", sa.JSON),
    sa.column("scope", sa.Text),
    sa.column("default_scope", sa.Text),
)


def _kind(row: sa.Row) -> str:
    if row.skip_consent:
        return "first_party"
    if not row.is_public and not row.redirect_uris:
        return "machine"
    return "third_party"


def _grants(kind: str, grants: list[str]) -> list[str]:
    if kind == "machine":
        return ["client_credentials"]
    if kind == "third_party":
        return [g for g in grants if g != "client_credentials"]
    return list(grants)


def upgrade() -> None:
    op.create_table(
        "oauth_client_assertions",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=False),
        sa.Column("jti_hash", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"],
            ["oauth_clients.client_id"],
            name=op.f("fk_oauth_client_assertions_client_id_oauth_clients"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oauth_client_assertions")),
        sa.UniqueConstraint(
            "client_id", "jti_hash", name=op.f("uq_oauth_client_assertions_client_id_jti_hash")
        ),
    )
    with op.batch_alter_table("oauth_client_assertions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oauth_client_assertions_expires_at"), ["expires_at"], unique=False
        )

    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column("jwks", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("default_scope", sa.Text(), nullable=True))

    connection = op.get_bind()
    rows = connection.execute(
        sa.select(
            _clients.c.id,
            _clients.c.skip_consent,
            _clients.c.is_public,
            _clients.c.redirect_uris,
            _clients.c.grant_types,
            _clients.c.scope,
        )
    ).all()
    for row in rows:
        kind = _kind(row)
        connection.execute(
            _clients.update()
            .where(_clients.c.id == row.id)
            .values(
                kind=kind,
                grant_types=_grants(kind, row.grant_types or []),
                default_scope=row.scope or "",
            )
        )

    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.alter_column("kind", existing_type=sa.String(length=16), nullable=False)
        batch_op.alter_column("default_scope", existing_type=sa.Text(), nullable=False)
        batch_op.create_check_constraint(
            op.f("ck_oauth_clients_kind"), "kind IN ('first_party', 'third_party', 'machine')"
        )
        batch_op.drop_column("skip_consent")

    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("family_issued_at", sa.Integer(), nullable=True))
    op.execute(
        "UPDATE oauth_tokens SET family_issued_at = (SELECT MIN(older.issued_at) "
        "FROM oauth_tokens AS older WHERE older.family_id = oauth_tokens.family_id)"
    )
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.alter_column("family_issued_at", existing_type=sa.Integer(), nullable=False)


def downgrade() -> None:
    with op.batch_alter_table("oauth_tokens", schema=None) as batch_op:
        batch_op.drop_column("family_issued_at")

    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("skip_consent", sa.Boolean(), server_default="0", nullable=False)
        )
    op.execute(_clients.update().where(_clients.c.kind == "first_party").values(skip_consent=True))
    with op.batch_alter_table("oauth_clients", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_oauth_clients_kind"), type_="check")
        batch_op.drop_column("default_scope")
        batch_op.drop_column("jwks")
        batch_op.drop_column("kind")

    with op.batch_alter_table("oauth_client_assertions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oauth_client_assertions_expires_at"))
    op.drop_table("oauth_client_assertions")
