-- Departments (生态云): the county's departments and township stations as
-- organisations with their own staff (effective-dated memberships, never
-- deleted, only ended), the grid area each covers, the category taxonomy
-- (Chinese names first) and the county's routing rules from category (and
-- zone kind) to a lead department and cooperating ones. Persons and grid
-- nodes are referenced by id and code without a foreign key: they belong
-- to people and grid.

-- +goose Up
CREATE SCHEMA IF NOT EXISTS departments;
GRANT USAGE ON SCHEMA departments TO ecogrid_app;
ALTER DEFAULT PRIVILEGES IN SCHEMA departments
    GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO ecogrid_app;

CREATE TABLE departments.departments (
    id            uuid PRIMARY KEY,
    county_code   text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    -- A township station (乡镇站所) names its township; '' is a county department.
    township_code text NOT NULL DEFAULT '' CHECK (township_code = '' OR (township_code ~ '^[0-9]{9,}$' AND left(township_code, 6) = county_code)),
    code          text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name_zh       text NOT NULL CHECK (name_zh <> '' AND length(name_zh) <= 100),
    name_en       text NOT NULL DEFAULT '' CHECK (length(name_en) <= 100),
    created_at    timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT departments_code_key UNIQUE (county_code, code)
);

-- The area a department covers: grid subtrees by node code, effective-dated.
CREATE TABLE departments.coverage (
    department_id uuid NOT NULL REFERENCES departments.departments (id),
    node_code     text NOT NULL CHECK (node_code ~ '^[0-9]{6,}$'),
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    CONSTRAINT coverage_period CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX coverage_open ON departments.coverage (department_id, node_code) WHERE valid_to IS NULL;

-- Department staff: who belongs to which department in which role, when.
CREATE TABLE departments.memberships (
    id            uuid PRIMARY KEY,
    department_id uuid NOT NULL REFERENCES departments.departments (id),
    person_id     uuid NOT NULL,
    role          text NOT NULL CHECK (role IN ('head', 'staff')),
    valid_from    timestamptz NOT NULL,
    valid_to      timestamptz,
    end_reason    text NOT NULL DEFAULT '',
    CONSTRAINT memberships_period CHECK (valid_to IS NULL OR valid_to >= valid_from)
);
CREATE UNIQUE INDEX memberships_open ON departments.memberships (department_id, person_id) WHERE valid_to IS NULL;
CREATE INDEX memberships_person ON departments.memberships (person_id, valid_from);

-- The category taxonomy: county_code '' holds the national defaults, a
-- county adds its own. The code is what reports carry.
CREATE TABLE departments.categories (
    county_code text NOT NULL CHECK (county_code = '' OR county_code ~ '^[0-9]{6}$'),
    code        text NOT NULL CHECK (code ~ '^[a-z][a-z0-9_]{1,39}$'),
    name_zh     text NOT NULL CHECK (name_zh <> '' AND length(name_zh) <= 100),
    name_en     text NOT NULL DEFAULT '' CHECK (length(name_en) <= 100),
    PRIMARY KEY (county_code, code)
);
INSERT INTO departments.categories (county_code, code, name_zh, name_en) VALUES
    ('', 'illegal_dumping',       '非法倾倒',     'illegal dumping'),
    ('', 'illegal_sand_mining',   '非法采砂',     'illegal sand mining'),
    ('', 'open_burning',          '露天焚烧',     'open burning'),
    ('', 'sewage_discharge',      '偷排漏排',     'sewage discharge'),
    ('', 'livestock_pollution',   '畜禽养殖污染', 'livestock pollution'),
    ('', 'illegal_logging',       '滥伐林木',     'illegal logging'),
    ('', 'illegal_land_occupation', '违法占地',   'illegal land occupation'),
    ('', 'black_odorous_water',   '黑臭水体',     'black and odorous water');

-- Routing: category (and zone kind; '' is any zone) → lead department,
-- cooperating departments, and the lead's rectification deadline in days.
CREATE TABLE departments.routes (
    county_code        text NOT NULL CHECK (county_code ~ '^[0-9]{6}$'),
    category           text NOT NULL,
    zone_kind          text NOT NULL DEFAULT '',
    lead_department_id uuid NOT NULL REFERENCES departments.departments (id),
    cooperating        uuid[] NOT NULL DEFAULT '{}',
    deadline_days      integer NOT NULL CHECK (deadline_days BETWEEN 0 AND 60),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (county_code, category, zone_kind)
);

-- +goose Down
DROP TABLE IF EXISTS departments.routes;
DROP TABLE IF EXISTS departments.categories;
DROP TABLE IF EXISTS departments.memberships;
DROP TABLE IF EXISTS departments.coverage;
DROP TABLE IF EXISTS departments.departments;
ALTER DEFAULT PRIVILEGES IN SCHEMA departments
    REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM ecogrid_app;
DROP SCHEMA IF EXISTS departments;
