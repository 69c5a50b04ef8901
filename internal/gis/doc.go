// Package gis owns the read model that desktop GIS tools open: the views
// of schema gis (current and historic grid boundaries, open cases at their
// position, reports, the last 30 days of patrols and their GPS fixes) and
// the read-only role ecogrid_gis that may read them and nothing else
// (migrations/00100_gis.sql; deploy/gis.md shows the QGIS connection).
//
// The views are the one place where SQL reads across contexts by design:
// they are a published, read-only projection for people outside the
// services, defined in a migration and checked here with GDAL itself
// (ogrinfo and ogr2ogr, Debian package gdal-bin), the library QGIS uses.
// No Go code of ecogrid reads them.
package gis
