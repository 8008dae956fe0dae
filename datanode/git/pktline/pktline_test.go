package pktline

import (
	"bytes"
	"errors"
	"io"
	"os/exec"
	"strings"
	"testing"
)

type pkt struct {
	kind Kind
	data string
}

func readAll(t *testing.T, in string) ([]pkt, error) {
	t.Helper()
	r := NewReader(strings.NewReader(in))
	var got []pkt
	for {
		k, p, err := r.ReadPacket()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		got = append(got, pkt{k, string(p)})
	}
}

func TestReaderTable(t *testing.T) {
	f := func(in string, want []pkt, wantErr error) {
		t.Helper()
		got, err := readAll(t, in)
		if !errors.Is(err, wantErr) {
			t.Fatalf("read %q: got error %v; want %v", in, err, wantErr)
		}
		if len(got) != len(want) {
			t.Fatalf("read %q: got %v; want %v", in, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("read %q: packet %d got %v; want %v", in, i, got[i], want[i])
			}
		}
	}
	f("", nil, nil)
	f("0009done\n0000", []pkt{{Data, "done\n"}, {Flush, ""}}, nil)
	f("000000010002", []pkt{{Flush, ""}, {Delim, ""}, {ResponseEnd, ""}}, nil)
	f("0004", []pkt{{Data, ""}}, nil)
	f("000Ahello\n", []pkt{{Data, "hello\n"}}, nil)
	f("0003", nil, ErrMalformed)
	f("00x5a", nil, ErrMalformed)
	f("-004", nil, ErrMalformed)
	f(" 004", nil, ErrMalformed)
	f("fff1", nil, ErrMalformed)
	f("ffff", nil, ErrMalformed)
	f("00", nil, ErrTruncated)
	f("0009don", nil, ErrTruncated)
	f("0008ab0000", []pkt{{Data, "ab00"}}, ErrTruncated)
	f("0000000", []pkt{{Flush, ""}}, ErrTruncated)
	var big strings.Builder
	big.WriteString("fff0")
	big.WriteString(strings.Repeat("x", MaxPayload))
	got, err := readAll(t, big.String())
	if err != nil || len(got) != 1 || len(got[0].data) != MaxPayload {
		t.Fatalf("max packet: got %d packets, err %v; want 1 packet of %d bytes", len(got), err, MaxPayload)
	}
}

func TestErrPacket(t *testing.T) {
	_, err := readAll(t, "0016ERR access denied\n")
	var ep *ErrPacket
	if !errors.As(err, &ep) || ep.Message != "access denied" {
		t.Fatalf("got %v; want *ErrPacket{access denied}", err)
	}
	var b bytes.Buffer
	if err := NewWriter(&b).WriteError("access denied"); err != nil {
		t.Fatal(err)
	}
	if got, want := b.String(), "0016ERR access denied\n"; got != want {
		t.Fatalf("WriteError: got %q; want %q", got, want)
	}
}

func TestWriterTable(t *testing.T) {
	var b bytes.Buffer
	w := NewWriter(&b)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(w.WriteString("done\n"))
	must(w.Writef("want %s\n", "abc"))
	must(w.Delim())
	must(w.WriteData(nil))
	must(w.ResponseEnd())
	must(w.Flush())
	if got, want := b.String(), "0009done\n000dwant abc\n0001000400020000"; got != want {
		t.Fatalf("got %q; want %q", got, want)
	}
	if err := w.WriteData(make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLong) {
		t.Fatalf("oversized payload: got %v; want ErrTooLong", err)
	}
	b.Reset()
	must(w.WriteData(make([]byte, MaxPayload)))
	if got := b.String()[:4]; got != "fff0" {
		t.Fatalf("max payload header: got %q; want fff0", got)
	}
}

func TestSidebandRoundTrip(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 10000) // 160000 bytes: 3 packets
	var b bytes.Buffer
	sw := NewSidebandWriter(&b)
	if err := sw.Progress("Counting objects: 1\r"); err != nil {
		t.Fatal(err)
	}
	if n, err := sw.Write(data); n != len(data) || err != nil {
		t.Fatalf("Write: got %d, %v; want %d, nil", n, err, len(data))
	}
	if err := NewWriter(&b).Flush(); err != nil {
		t.Fatal(err)
	}
	// Every packet is within the limit and has band 1 or 2.
	pr := NewReader(bytes.NewReader(b.Bytes()))
	packets := 0
	for {
		k, p, err := pr.Read()
		if err != nil {
			t.Fatal(err)
		}
		if k == Flush {
			break
		}
		if len(p) == 0 || len(p) > MaxPayload || (p[0] != BandData && p[0] != BandProgress) {
			t.Fatalf("packet %d: len %d band %v; want 1..%d bytes on band 1 or 2", packets, len(p), p[:min(1, len(p))], MaxPayload)
		}
		packets++
	}
	if want := 1 + (len(data)+MaxSidebandData-1)/MaxSidebandData; packets != want {
		t.Fatalf("got %d packets; want %d", packets, want)
	}
	var progress bytes.Buffer
	got, err := io.ReadAll(NewSidebandReader(NewReader(bytes.NewReader(b.Bytes())), &progress))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back: got %d bytes, %v; want %d bytes, nil", len(got), err, len(data))
	}
	if progress.String() != "Counting objects: 1\r" {
		t.Fatalf("progress: got %q", progress.String())
	}
}

func TestSidebandErrors(t *testing.T) {
	f := func(in string, check func(error) bool, want string) {
		t.Helper()
		_, err := io.ReadAll(NewSidebandReader(NewReader(strings.NewReader(in)), nil))
		if !check(err) {
			t.Fatalf("read %q: got %v; want %s", in, err, want)
		}
	}
	f("0011\x03fatal: boom\n", func(err error) bool {
		var re *RemoteError
		return errors.As(err, &re) && re.Message == "fatal: boom\n"
	}, "RemoteError")
	f("0006\x04x0000", func(err error) bool { return errors.Is(err, ErrBadBand) }, "ErrBadBand")
	f("0004", func(err error) bool { return errors.Is(err, ErrBadBand) }, "ErrBadBand")
	f("0006\x01x", func(err error) bool { return errors.Is(err, io.ErrUnexpectedEOF) }, "ErrUnexpectedEOF")
	f("0010ERR no access\n", func(err error) bool { var e *ErrPacket; return errors.As(err, &e) }, "ErrPacket")
}

// TestReadsStockGitAdvertisement parses what stock git upload-pack sends.
func TestReadsStockGitAdvertisement(t *testing.T) {
	dir := t.TempDir()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(cmd.Environ(), "GIT_AUTHOR_NAME=a", "GIT_AUTHOR_EMAIL=a@b", "GIT_COMMITTER_NAME=a", "GIT_COMMITTER_EMAIL=a@b")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %v: %v", args, err)
		}
		return string(out)
	}
	run("init", "-q", "-b", "main")
	run("commit", "-q", "--allow-empty", "-m", "one")
	head := strings.TrimSpace(run("rev-parse", "HEAD"))
	out := run("upload-pack", "--stateless-rpc", "--advertise-refs", ".")
	got, err := readAll(t, out)
	if err != nil {
		t.Fatalf("parse stock advertisement %q: %v", out, err)
	}
	if len(got) < 2 || got[len(got)-1].kind != Flush || !strings.HasPrefix(got[0].data, head+" HEAD\x00") {
		t.Fatalf("got %v; want first line %q HEAD\\0caps and a final flush", got, head)
	}
	// Round trip: writing the parsed packets gives the same bytes.
	var b bytes.Buffer
	w := NewWriter(&b)
	for _, p := range got {
		if p.kind == Flush {
			_ = w.Flush()
		} else {
			_ = w.WriteString(p.data)
		}
	}
	if b.String() != out {
		t.Fatalf("rewrite: got %q; want %q", b.String(), out)
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{"0009done\n0000", "000100020004", "0003", "fff0", "0016ERR access denied\n", "0006\x01x0000"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		r := NewReader(bytes.NewReader(in))
		consumed := 0
		for {
			k, p, err := r.Read()
			if err != nil {
				break
			}
			if len(p) > MaxPayload {
				t.Fatalf("payload of %d bytes over %d", len(p), MaxPayload)
			}
			if k == Data {
				consumed += 4 + len(p)
				// The payload is exactly the input bytes after the header.
				if got := in[consumed-len(p) : consumed]; !bytes.Equal(p, got) {
					t.Fatalf("payload %q; input had %q", p, got)
				}
			} else {
				consumed += 4
			}
		}
		_, _ = io.ReadAll(NewSidebandReader(NewReader(bytes.NewReader(in)), io.Discard))
	})
}
