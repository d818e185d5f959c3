"""registry: the placement rule, `registry.placement_on(day)`

Where every unit sits on a day: its latest placement with valid_from on or before the day, and
whether the unit is active that day (active_from and active_to both inclusive). A unit with no
placement yet on the day has no row. Its Python twin is shared/registry/placement.py, and a
test holds the two to the same answers.

A set-returning SQL function that PostgreSQL inlines into the calling query: called in FROM
(or LATERAL, once per day) it is planned as the query it contains, and a caller's condition on
unit_code or node_code reaches the placements' indexes. A condition that joins it to other rows
does not (the latest-placement anti-join refers to the day): a lookup unit by unit puts its
condition inside a subquery of its own (see the projector's CURRENT).

Revision ID: registry_0003
Revises: registry_0002
"""

from alembic import op

revision = "registry_0003"
down_revision = "registry_0002"
branch_labels = None
depends_on = None

# Kept inlinable: LANGUAGE sql, STABLE, one SELECT, not STRICT, no SET clause. The latest
# placement is the one no later placement on or before the day replaces: as an anti-join, a
# day's expected units are counted faster than with DISTINCT ON or a LIMIT 1 per unit.
PLACEMENT_ON = """
CREATE FUNCTION registry.placement_on(day date)
RETURNS TABLE (unit_code varchar, node_code varchar, active boolean, name varchar,
               unit_type varchar, sector varchar)
LANGUAGE sql STABLE PARALLEL SAFE AS $$
    SELECT p.unit_code, p.node_code,
           (u.active_from IS NULL OR u.active_from <= placement_on.day)
           AND (u.active_to IS NULL OR u.active_to >= placement_on.day),
           u.name, u.unit_type, u.sector
    FROM registry.placements p
    JOIN registry.units u ON u.code = p.unit_code
    WHERE p.valid_from <= placement_on.day
      AND NOT EXISTS (
          SELECT 1 FROM registry.placements later
          WHERE later.unit_code = p.unit_code AND later.valid_from > p.valid_from
            AND later.valid_from <= placement_on.day)
$$
"""


def upgrade() -> None:
    op.execute(PLACEMENT_ON)


def downgrade() -> None:
    op.execute("DROP FUNCTION registry.placement_on(date)")
