package receivepack

import (
	"bytes"
	"fmt"
	"io"
	"strings"

	"github.com/stratum-store/stratum/datanode/git/pktline"
)

// maxReason bounds a reason sent to the client: one line git prints.
const maxReason = 1000

// report writes report-status (if the client asked for it) and the
// progress notes: with side-band-64k, the report in band 1 and the notes in
// band 2 (unless quiet), then a flush; without, the bare report.
func (p *push) report(w io.Writer) error {
	var buf bytes.Buffer
	if p.q.has("report-status") {
		pw := pktline.NewWriter(&buf)
		unpack := "ok"
		if p.res.Unpack != nil {
			unpack = oneLine(p.res.Unpack)
		}
		pw.WriteString("unpack " + unpack + "\n")
		for _, c := range p.res.Commands {
			if c.Status == statusOK {
				pw.WriteString("ok " + c.Name + "\n")
			} else {
				pw.WriteString("ng " + c.Name + " " + c.Status + "\n")
			}
		}
		pw.Flush()
	}
	if !p.q.has("side-band-64k") {
		_, err := w.Write(buf.Bytes())
		return err
	}
	sb := pktline.NewSidebandWriter(w)
	if !p.q.has("quiet") {
		for _, n := range p.progress {
			if err := sb.Progress("stratum: " + n + "\n"); err != nil {
				return err
			}
		}
	}
	if buf.Len() > 0 {
		if _, err := sb.Write(buf.Bytes()); err != nil {
			return err
		}
	}
	return pktline.NewWriter(w).Flush()
}

// fatal tells the client why its request was refused before any push
// work: on band 3 if it asked for side-band-64k, else in an ERR packet.
func fatal(w io.Writer, q request, msg string) error {
	msg = oneLine(fmt.Errorf("%s", msg))
	if q.has("side-band-64k") {
		if err := pktline.NewSidebandWriter(w).Error(msg + "\n"); err != nil {
			return err
		}
		return pktline.NewWriter(w).Flush()
	}
	return pktline.NewWriter(w).WriteError(msg)
}

// oneLine makes err's text fit one line of a report.
func oneLine(err error) string {
	s := strings.Map(func(r rune) rune {
		if r == '\n' || r == '\r' || r == 0 {
			return ' '
		}
		return r
	}, err.Error())
	if len(s) > maxReason {
		s = s[:maxReason] + "..."
	}
	return s
}
