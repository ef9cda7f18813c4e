package publisher

import (
	"github.com/nats-io/nats.go"

	"github.com/cvmwatch/cvmwatch/publisher/wire"
	"github.com/cvmwatch/cvmwatch/watcher"
)

// ScanContentType is the Content-Type of a scan summary (see
// wire.ScanContentType).
const ScanContentType = wire.ScanContentType

// ScanMessage is the JSON body of a scan summary (see wire.ScanMessage).
type ScanMessage = wire.ScanMessage

// encodeScan builds the message for s, or says why s cannot be published
// (see wire.EncodeScan).
func encodeScan(prefix string, s watcher.ScanSummary) (*nats.Msg, error) {
	m, err := wire.EncodeScan(prefix, s)
	if err != nil {
		return nil, err
	}
	return natsMsg(m), nil
}

// ScanMsgID returns the Nats-Msg-Id of a summary (see wire.ScanMsgID).
func ScanMsgID(s watcher.ScanSummary) string { return wire.ScanMsgID(s) }
