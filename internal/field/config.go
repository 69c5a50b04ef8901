package field

import "time"

// Config holds the limits and tolerances of field reporting. Zero fields
// take the defaults of DefaultConfig.
type Config struct {
	// MaxClockSkew is how far in the future a device time may be: phones'
	// clocks drift, but an observation from tomorrow is a broken clock.
	MaxClockSkew time.Duration
	// MaxReportAge rejects observations older than this (offline queues
	// replay days later, not years).
	MaxReportAge time.Duration
	// MaxDescriptionRunes bounds a report's text.
	MaxDescriptionRunes int
	// MaxPhotosPerReport bounds the photo references of one report.
	MaxPhotosPerReport int
	// MaxBatchReports bounds SubmitReportBatch.
	MaxBatchReports int
	// MaxTrackBatch bounds the points of one AppendTrackPoints call.
	MaxTrackBatch int
	// MaxAccuracyM rejects fixes whose accuracy radius is larger (no
	// position at all, really).
	MaxAccuracyM float64
	// MaxSpeedKmh flags a patrol with a faster leg between two points.
	MaxSpeedKmh float64
	// DefaultPatrolRule applies to cells whose grid tasks set no minimum.
	DefaultPatrolRule PatrolRule
	// Photo limits.
	MaxPhotoBytes  int64
	MaxChunkBytes  int
	MaxPhotoPixels int64
	// MaxExifBytes bounds the EXIF block read from a photo.
	MaxExifBytes int
	// ExifMaxDistanceM and ExifMaxTimeDelta flag a photo whose EXIF
	// position or time disagrees with its report's (flagged, not rejected).
	ExifMaxDistanceM float64
	ExifMaxTimeDelta time.Duration
	// AbandonedUploadAge is when the janitor removes an unfinished upload.
	AbandonedUploadAge time.Duration
	// SyncEvery is how many bytes of an upload are written before they are
	// fsynced and the committed offset recorded.
	SyncEvery int64
}

// DefaultConfig returns the limits a county office would start with.
func DefaultConfig() Config {
	return Config{
		MaxClockSkew:        10 * time.Minute,
		MaxReportAge:        366 * 24 * time.Hour,
		MaxDescriptionRunes: 4000,
		MaxPhotosPerReport:  20,
		MaxBatchReports:     200,
		MaxTrackBatch:       5000,
		MaxAccuracyM:        10000,
		MaxSpeedKmh:         120,
		DefaultPatrolRule:   PatrolRule{MinDuration: 20 * time.Minute, MinDistanceM: 1000},
		MaxPhotoBytes:       20 << 20,
		MaxChunkBytes:       1 << 20,
		MaxPhotoPixels:      200_000_000,
		MaxExifBytes:        256 << 10,
		ExifMaxDistanceM:    500,
		ExifMaxTimeDelta:    2 * time.Hour,
		AbandonedUploadAge:  7 * 24 * time.Hour,
		SyncEvery:           4 << 20,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	set := func(v *time.Duration, def time.Duration) {
		if *v <= 0 {
			*v = def
		}
	}
	set(&c.MaxClockSkew, d.MaxClockSkew)
	set(&c.MaxReportAge, d.MaxReportAge)
	set(&c.ExifMaxTimeDelta, d.ExifMaxTimeDelta)
	set(&c.AbandonedUploadAge, d.AbandonedUploadAge)
	if c.MaxDescriptionRunes <= 0 {
		c.MaxDescriptionRunes = d.MaxDescriptionRunes
	}
	if c.MaxPhotosPerReport <= 0 {
		c.MaxPhotosPerReport = d.MaxPhotosPerReport
	}
	if c.MaxBatchReports <= 0 {
		c.MaxBatchReports = d.MaxBatchReports
	}
	if c.MaxTrackBatch <= 0 {
		c.MaxTrackBatch = d.MaxTrackBatch
	}
	if c.MaxAccuracyM <= 0 {
		c.MaxAccuracyM = d.MaxAccuracyM
	}
	if c.MaxSpeedKmh <= 0 {
		c.MaxSpeedKmh = d.MaxSpeedKmh
	}
	if c.DefaultPatrolRule == (PatrolRule{}) {
		c.DefaultPatrolRule = d.DefaultPatrolRule
	}
	if c.MaxPhotoBytes <= 0 {
		c.MaxPhotoBytes = d.MaxPhotoBytes
	}
	if c.MaxChunkBytes <= 0 {
		c.MaxChunkBytes = d.MaxChunkBytes
	}
	if c.MaxPhotoPixels <= 0 {
		c.MaxPhotoPixels = d.MaxPhotoPixels
	}
	if c.MaxExifBytes <= 0 {
		c.MaxExifBytes = d.MaxExifBytes
	}
	if c.ExifMaxDistanceM <= 0 {
		c.ExifMaxDistanceM = d.ExifMaxDistanceM
	}
	if c.SyncEvery <= 0 {
		c.SyncEvery = d.SyncEvery
	}
	return c
}
