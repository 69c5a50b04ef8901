-- Grid: the county code in every key (issue 15, Citus readiness). With the
-- database distributed by county_code, a primary key, and every foreign key
-- between distributed tables, must include the distribution column; a
-- node's parent is always in its own county (a county has none), so the
-- keys gain county_code without changing what they mean. Lookups by id
-- alone keep an index of their own.

-- +goose Up
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_node_id_fkey;
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_parent_id_fkey;
ALTER TABLE grid.nodes DROP CONSTRAINT nodes_parent_id_fkey;
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_pkey;
ALTER TABLE grid.nodes DROP CONSTRAINT nodes_pkey;

ALTER TABLE grid.nodes ADD CONSTRAINT nodes_pkey PRIMARY KEY (county_code, id);
CREATE INDEX nodes_id ON grid.nodes (id);
ALTER TABLE grid.nodes ADD CONSTRAINT nodes_parent_id_fkey
    FOREIGN KEY (county_code, parent_id) REFERENCES grid.nodes (county_code, id);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_pkey PRIMARY KEY (county_code, node_id, version);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_node_id_fkey
    FOREIGN KEY (county_code, node_id) REFERENCES grid.nodes (county_code, id);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_parent_id_fkey
    FOREIGN KEY (county_code, parent_id) REFERENCES grid.nodes (county_code, id);

-- +goose Down
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_parent_id_fkey;
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_node_id_fkey;
ALTER TABLE grid.node_versions DROP CONSTRAINT node_versions_pkey;
ALTER TABLE grid.nodes DROP CONSTRAINT nodes_parent_id_fkey;
ALTER TABLE grid.nodes DROP CONSTRAINT nodes_pkey;
DROP INDEX grid.nodes_id;
ALTER TABLE grid.nodes ADD CONSTRAINT nodes_pkey PRIMARY KEY (id);
ALTER TABLE grid.nodes ADD CONSTRAINT nodes_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES grid.nodes (id);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_pkey PRIMARY KEY (node_id, version);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_node_id_fkey FOREIGN KEY (node_id) REFERENCES grid.nodes (id);
ALTER TABLE grid.node_versions ADD CONSTRAINT node_versions_parent_id_fkey FOREIGN KEY (parent_id) REFERENCES grid.nodes (id);
