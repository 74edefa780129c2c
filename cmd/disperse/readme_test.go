package main

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The tests here keep README.md true to the binary: every curl example of
// its sh blocks runs against a real node and gets what its comment says,
// and its list of error codes is the set the httpd package answers, with
// the same statuses. TestReadmeListsEverySetting (config_test.go) keeps
// its settings table in step with serve's settings.

// readmePath is README.md at the root of the module.
var readmePath = filepath.Join("..", "..", "README.md")

// readmeExample is one command of a ```sh block of README.md that the
// tests run: a curl, or a redis-cli that sets up the curl after it.
type readmeExample struct {
	line    int      // line in README.md where the command starts
	section string   // the "## " heading it is under
	text    string   // the command as written, continuation lines joined
	words   []string // its shell words, $VARIABLES expanded
	comment string   // its trailing "# comment", without the #
	below   []string // the comment lines right below it, without the #
	err     error    // why its command line cannot be split into words
}

func (ex readmeExample) String() string {
	return fmt.Sprintf("README.md:%d: %s", ex.line, strings.Join(strings.Fields(ex.text), " "))
}

// readmeVars are the shell variables the examples may use.
var readmeVars = map[string]string{"TOKEN": testAdminToken}

// readmeExamples returns the curl and redis-cli commands of the ```sh
// blocks of the README text, in order.
func readmeExamples(readme string) []readmeExample {
	lines := strings.Split(readme, "\n")
	var out []readmeExample
	section, inSh, inFence := "", false, false
	for i := 0; i < len(lines); i++ {
		l := lines[i]
		if strings.HasPrefix(l, "```") {
			if inFence {
				inFence, inSh = false, false
			} else {
				inFence, inSh = true, strings.TrimSpace(strings.TrimPrefix(l, "```")) == "sh"
			}
			continue
		}
		if !inFence && strings.HasPrefix(l, "## ") {
			section = strings.TrimSpace(strings.TrimPrefix(l, "## "))
		}
		trimmed := strings.TrimSpace(l)
		if !inSh || !(strings.HasPrefix(trimmed, "curl ") || strings.HasPrefix(trimmed, "redis-cli ")) {
			continue
		}
		ex := readmeExample{line: i + 1, section: section, text: l}
		for strings.HasSuffix(lines[i], `\`) && i+1 < len(lines) {
			i++
			ex.text += "\n" + lines[i]
		}
		ex.words, ex.comment, ex.err = shellWords(ex.text, readmeVars)
		for j := i + 1; j < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[j]), "#"); j++ {
			ex.below = append(ex.below, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[j]), "#")))
		}
		out = append(out, ex)
	}
	return out
}

// shellWords splits one command line as sh does for the simple commands
// the README shows: single and double quotes, backslash escapes and line
// continuations, $NAME and ${NAME} from vars, and a trailing # comment,
// returned apart. Anything a reader's shell would treat differently from
// the word it looks like (an unknown variable, a command substitution, an
// unquoted |, &, ;, <, >, (, ), or a glob character) is an error.
func shellWords(s string, vars map[string]string) (words []string, comment string, err error) {
	var cur strings.Builder
	inWord := false
	expand := func(i int) (int, error) { // s[i] == '$'
		rest := s[i+1:]
		var name string
		switch {
		case strings.HasPrefix(rest, "{"):
			end := strings.IndexByte(rest, '}')
			if end < 0 {
				return 0, fmt.Errorf("unterminated ${ at offset %d", i)
			}
			name, i = rest[1:end], i+1+end+1
		default:
			n := 0
			for n < len(rest) && (rest[n] == '_' || rest[n] >= 'A' && rest[n] <= 'Z' || rest[n] >= 'a' && rest[n] <= 'z' || n > 0 && rest[n] >= '0' && rest[n] <= '9') {
				n++
			}
			if n == 0 {
				return 0, fmt.Errorf("$ not followed by a variable name (command substitution?) at offset %d", i)
			}
			name, i = rest[:n], i+1+n
		}
		v, ok := vars[name]
		if !ok {
			return 0, fmt.Errorf("variable $%s: the test does not know its value; add it to readmeVars", name)
		}
		cur.WriteString(v)
		return i, nil
	}
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
			i++
		case c == '\\':
			if i+1 < len(s) && s[i+1] == '\n' {
				i += 2
				continue
			}
			if i+1 >= len(s) {
				return nil, "", fmt.Errorf("trailing backslash")
			}
			cur.WriteByte(s[i+1])
			inWord, i = true, i+2
		case c == '\'':
			end := strings.IndexByte(s[i+1:], '\'')
			if end < 0 {
				return nil, "", fmt.Errorf("unterminated single quote at offset %d", i)
			}
			cur.WriteString(s[i+1 : i+1+end])
			inWord, i = true, i+1+end+1
		case c == '"':
			inWord = true
			i++
			for {
				if i >= len(s) {
					return nil, "", fmt.Errorf("unterminated double quote")
				}
				d := s[i]
				if d == '"' {
					i++
					break
				}
				switch {
				case d == '\\' && i+1 < len(s) && strings.IndexByte("$`\"\\\n", s[i+1]) >= 0:
					if s[i+1] != '\n' {
						cur.WriteByte(s[i+1])
					}
					i += 2
				case d == '$':
					if i, err = expand(i); err != nil {
						return nil, "", err
					}
				case d == '`':
					return nil, "", fmt.Errorf("command substitution in double quotes")
				default:
					cur.WriteByte(d)
					i++
				}
			}
		case c == '$':
			inWord = true
			if i, err = expand(i); err != nil {
				return nil, "", err
			}
		case c == '#' && !inWord:
			return words, strings.TrimSpace(s[i+1:]), nil
		case strings.IndexByte("|&;<>()`", c) >= 0:
			return nil, "", fmt.Errorf("shell metacharacter %q outside quotes: the shell would not pass it to the command", c)
		case strings.IndexByte("*?[", c) >= 0:
			return nil, "", fmt.Errorf("%q outside quotes is a glob pattern (zsh fails with \"no matches found\"): quote the word", c)
		default:
			cur.WriteByte(c)
			inWord, i = true, i+1
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, "", nil
}

func TestReadmeShellWords(t *testing.T) {
	vars := map[string]string{"TOKEN": "tok"}
	tests := []struct {
		in, comment string
		want        []string
	}{
		{`curl -X PUT 'localhost:8000/a?b=1&c=2' -H "Authorization: Bearer $TOKEN" \` + "\n" + `   -d '{"v": "x"}'   # 200, the value`,
			"200, the value", []string{"curl", "-X", "PUT", "localhost:8000/a?b=1&c=2", "-H", "Authorization: Bearer tok", "-d", `{"v": "x"}`}},
		{`curl -H 'If-Match: "<the ETag>"' a\ b "x\"y${TOKEN}" #c`, "c", []string{"curl", "-H", `If-Match: "<the ETag>"`, "a b", `x"ytok`}},
		{`curl a#b`, "", []string{"curl", "a#b"}},
	}
	for _, tt := range tests {
		words, comment, err := shellWords(tt.in, vars)
		if err != nil || comment != tt.comment || !slices.Equal(words, tt.want) {
			t.Errorf("shellWords(%q) = %q, %q, %v; want %q, %q", tt.in, words, comment, err, tt.want, tt.comment)
		}
	}
	for _, bad := range []string{`curl localhost:8000/blob?limit=10`, `curl a & b`, `curl "$NOPE"`, `curl $(date)`, `curl 'open`} {
		if words, _, err := shellWords(bad, vars); err == nil {
			t.Errorf("shellWords(%q) = %q, want an error", bad, words)
		}
	}
}

// curlRequest is a curl command line, parsed.
type curlRequest struct {
	method  string
	url     string
	headers [][2]string
	body    []byte
	hasBody bool
	head    bool   // -I
	output  string // -o FILE
	cacert  string // --cacert FILE
}

// parseCurl parses the words of a curl command, with exactly the flags
// README.md uses; a file argument (@FILE, -o FILE, --cacert FILE) is
// relative to dir.
func parseCurl(words []string, dir string) (*curlRequest, error) {
	r := &curlRequest{}
	arg := func(i int) (string, error) {
		if i+1 >= len(words) {
			return "", fmt.Errorf("%s needs an argument", words[i])
		}
		return words[i+1], nil
	}
	readFile := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("the example reads %s, which the test has no fixture for (add one to readmeFixtures): %w", name, err)
		}
		return b, nil
	}
	var data [][]byte
	for i := 1; i < len(words); i++ {
		w := words[i]
		if !strings.HasPrefix(w, "-") {
			if r.url != "" {
				return nil, fmt.Errorf("two URLs, %q and %q: the test runs one request per example", r.url, w)
			}
			r.url = w
			continue
		}
		switch w {
		case "-i":
		case "-I":
			r.head = true
		case "-X", "-H", "-d", "--data-binary", "-o", "--cacert":
			v, err := arg(i)
			if err != nil {
				return nil, err
			}
			i++
			switch w {
			case "-X":
				r.method = v
			case "-H":
				name, value, ok := strings.Cut(v, ":")
				if !ok {
					return nil, fmt.Errorf("-H %q is not Name: value", v)
				}
				r.headers = append(r.headers, [2]string{strings.TrimSpace(name), strings.TrimSpace(value)})
			case "-d", "--data-binary":
				var b []byte
				if name, ok := strings.CutPrefix(v, "@"); ok {
					if b, err = readFile(name); err != nil {
						return nil, err
					}
					if w == "-d" { // curl -d @FILE drops carriage returns and newlines
						b = bytes.ReplaceAll(bytes.ReplaceAll(b, []byte("\r"), nil), []byte("\n"), nil)
					}
				} else {
					b = []byte(v)
				}
				data = append(data, b)
			case "-o":
				r.output = filepath.Join(dir, v)
			case "--cacert":
				r.cacert = filepath.Join(dir, v)
			}
		default:
			return nil, fmt.Errorf("curl flag %s: the test does not know it, so this example would go unchecked; teach parseCurl what it does", w)
		}
	}
	if r.url == "" {
		return nil, fmt.Errorf("no URL")
	}
	if len(data) > 0 {
		r.body, r.hasBody = bytes.Join(data, []byte("&")), true
	}
	if r.method == "" {
		switch {
		case r.head:
			r.method = http.MethodHead
		case r.hasBody:
			r.method = http.MethodPost
		default:
			r.method = http.MethodGet
		}
	}
	return r, nil
}

// readmeExpect is what an example's comments promise.
type readmeExpect struct {
	statuses []int    // any of these; none: a 2xx or 3xx
	headers  []string // answer headers that must be there
	noBody   bool
	shape    string // a JSON sample the answer must have the keys (and numbers) of
	// value: "the value" is in the answer, which is not empty.
	value bool
	// expiresIn: "X-Expires-At in 90 s", within that time from now.
	expiresIn time.Duration
	// again: "also when the key was absent", so sent twice.
	again bool
}

var (
	statusRE = regexp.MustCompile(`\b[1-5]\d\d\b`)
	// headerRE finds the names of answer headers in a comment.
	headerRE = regexp.MustCompile(`\b(ETag|Retry-After|Content-Range|Content-Type|Content-Length|WWW-Authenticate|Location|X-[A-Z][A-Za-z]*(?:-[A-Z][A-Za-z]*)*)\b`)
	// jsonKeyRE finds "key": in a JSON sample; jsonSetRE a {"a","b"} list of keys.
	jsonKeyRE    = regexp.MustCompile(`"([A-Za-z_]+)"\s*:`)
	jsonSetRE    = regexp.MustCompile(`\{\s*"[A-Za-z_]+"(?:\s*,\s*"[A-Za-z_]+")*\s*\}`)
	jsonNumberRE = regexp.MustCompile(`"([A-Za-z_]+)"\s*:\s*(-?\d+(?:\.\d+)?)\s*[,}]`)
	leadStatusRE = regexp.MustCompile(`^([1-5]\d\d)\b`)
	expiresInRE  = regexp.MustCompile(`X-Expires-At in (\d+) ?s\b`)
)

// expectOf reads the expectations of an example from its trailing comment
// (statuses, headers, "no body", "the same headers" as the example before,
// a JSON sample) and from the comment lines right below it (a status that
// starts the first one, a JSON sample).
func expectOf(ex readmeExample, prevHeaders []string) readmeExpect {
	var e readmeExpect
	for _, m := range statusRE.FindAllString(ex.comment, -1) {
		if n, _ := strconv.Atoi(m); http.StatusText(n) != "" && !slices.Contains(e.statuses, n) {
			e.statuses = append(e.statuses, n)
		}
	}
	for _, m := range headerRE.FindAllString(ex.comment, -1) {
		if !slices.Contains(e.headers, m) {
			e.headers = append(e.headers, m)
		}
	}
	if strings.Contains(ex.comment, "the same headers") {
		e.headers = append(e.headers, prevHeaders...)
	}
	e.noBody = strings.Contains(ex.comment, "no body")
	e.value = strings.Contains(ex.comment, "the value")
	if m := expiresInRE.FindStringSubmatch(ex.comment); m != nil {
		n, _ := strconv.Atoi(m[1])
		e.expiresIn = time.Duration(n) * time.Second
	}
	e.again = strings.Contains(ex.comment, "also when the key was absent")
	if strings.Contains(ex.comment, "{") {
		e.shape = ex.comment
	}
	if len(ex.below) > 0 {
		first := ex.below[0]
		if m := leadStatusRE.FindStringSubmatch(first); m != nil && len(e.statuses) == 0 {
			n, _ := strconv.Atoi(m[1])
			e.statuses = []int{n}
			first = strings.TrimSpace(first[len(m[1]):])
		}
		if e.shape == "" && strings.HasPrefix(first, "{") {
			e.shape = first
		}
	}
	return e
}

// checkShape checks that body, a JSON object or an array of them, has the
// keys of the JSON sample and its numbers ("data":4).
func checkShape(sample string, body []byte) error {
	var keys []string
	for _, m := range jsonKeyRE.FindAllStringSubmatch(sample, -1) {
		keys = append(keys, m[1])
	}
	if len(keys) == 0 {
		for _, set := range jsonSetRE.FindAllString(sample, -1) {
			for _, k := range strings.Split(strings.Trim(set, "{} "), ",") {
				keys = append(keys, strings.Trim(strings.TrimSpace(k), `"`))
			}
		}
	}
	if len(keys) == 0 {
		return nil
	}
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return fmt.Errorf("the comment shows JSON %s; the answer is not JSON (%v): %.200s", sample, err, body)
	}
	var objs []map[string]any
	switch v := v.(type) {
	case map[string]any:
		objs = append(objs, v)
	case []any:
		for _, el := range v {
			o, ok := el.(map[string]any)
			if !ok {
				return fmt.Errorf("the comment shows %s; an element of the answer is not an object: %.200s", sample, body)
			}
			objs = append(objs, o)
		}
		if len(objs) == 0 {
			return fmt.Errorf("the comment shows %s; the answer is an empty array", sample)
		}
	default:
		return fmt.Errorf("the comment shows %s; the answer is %.200s", sample, body)
	}
	for _, o := range objs {
		for _, k := range keys {
			if _, ok := o[k]; !ok {
				return fmt.Errorf("the comment shows key %q (%s); the answer has none: %.300s", k, sample, body)
			}
		}
		for _, m := range jsonNumberRE.FindAllStringSubmatch(sample, -1) {
			want, _ := strconv.ParseFloat(m[2], 64)
			if got, ok := o[m[1]].(float64); !ok || got != want {
				return fmt.Errorf("the comment shows \"%s\":%s; the answer has %v: %.300s", m[1], m[2], o[m[1]], body)
			}
		}
	}
	return nil
}

// readmeTarget is a node the examples run against.
type readmeTarget struct {
	p    *proc
	base *url.URL // scheme and host of its API
}

// readmeRunner runs examples in order and remembers what the comments of
// the next ones refer to.
type readmeRunner struct {
	t           *testing.T
	dir         string // the fixtures, and where -o writes
	prevHeaders []string
}

// run runs one example against tg; it reports a failure with the README
// line and returns false.
func (r *readmeRunner) run(ex readmeExample, tg readmeTarget) bool {
	r.t.Helper()
	err := ex.err
	switch {
	case err != nil:
	case ex.words[0] == "curl":
		err = r.curl(ex, tg)
	case ex.words[0] == "redis-cli":
		err = r.redis(ex, tg)
	default:
		err = fmt.Errorf("not a command the test runs")
	}
	if err != nil {
		r.t.Errorf("%s\n\t%v", ex, err)
		return false
	}
	return true
}

// placeholderRE finds a placeholder such as "<the ETag>", with the quotes
// around it.
var placeholderRE = regexp.MustCompile(`"?<([^<>]+)>"?`)

func (r *readmeRunner) curl(ex readmeExample, tg readmeTarget) error {
	cr, err := parseCurl(ex.words, r.dir)
	if err != nil {
		return err
	}
	raw := cr.url
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("URL %q: %v", cr.url, err)
	}
	if u.Scheme != tg.base.Scheme {
		return fmt.Errorf("URL %s: the node of section %q serves %s", cr.url, ex.section, tg.base.Scheme)
	}
	u.Host = tg.base.Host // localhost:8000, 10.0.0.1:8000: the test node

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	if cr.cacert != "" {
		pem, err := os.ReadFile(cr.cacert)
		if err != nil {
			return fmt.Errorf("--cacert: the test has no fixture: %v", err)
		}
		roots := x509.NewCertPool()
		if !roots.AppendCertsFromPEM(pem) {
			return fmt.Errorf("--cacert %s: no certificate", cr.cacert)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: roots}
	}
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }} // curl without -L

	headers := cr.headers
	for i, h := range headers {
		for _, m := range placeholderRE.FindAllStringSubmatch(h[1], -1) {
			v, err := r.placeholder(m[1], hc, u, headers)
			if err != nil {
				return err
			}
			headers[i][1] = strings.Replace(headers[i][1], m[0], v, 1)
		}
	}
	send := func() (*http.Response, []byte, error) {
		var body io.Reader
		if cr.hasBody {
			body = bytes.NewReader(cr.body)
		}
		req, err := http.NewRequest(cr.method, u.String(), body)
		if err != nil {
			return nil, nil, err
		}
		req.Header.Set("Accept", "*/*")
		req.Header.Set("User-Agent", "curl/8 (README test)")
		if cr.hasBody {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded") // curl's for -d and --data-binary
		}
		for _, h := range headers {
			req.Header.Set(h[0], h[1])
		}
		resp, err := hc.Do(req)
		if err != nil {
			return nil, nil, err
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, nil, fmt.Errorf("reading the answer: %v", err)
		}
		return resp, got, nil
	}
	resp, got, err := send()
	if err != nil {
		return err
	}
	if cr.output != "" {
		if err := os.WriteFile(cr.output, got, 0o600); err != nil {
			return err
		}
	}

	want := expectOf(ex, r.prevHeaders)
	r.prevHeaders = want.headers
	answer := fmt.Sprintf("%s %s answered %d %.300s", cr.method, u.RequestURI(), resp.StatusCode, got)
	switch {
	case len(want.statuses) > 0 && !slices.Contains(want.statuses, resp.StatusCode):
		return fmt.Errorf("the comment says %v; %s", want.statuses, answer)
	case len(want.statuses) == 0 && (resp.StatusCode < 200 || resp.StatusCode > 399):
		return fmt.Errorf("want a 2xx or 3xx (the comment names no status); %s", answer)
	}
	for _, h := range want.headers {
		if resp.Header.Get(h) == "" {
			return fmt.Errorf("the comment names header %s; the answer has none (headers %v); %s", h, resp.Header, answer)
		}
	}
	if want.noBody && len(got) > 0 {
		return fmt.Errorf("the comment says no body; %s", answer)
	}
	if want.shape != "" && resp.StatusCode < 300 {
		if err := checkShape(want.shape, got); err != nil {
			return fmt.Errorf("%v (%s %s)", err, cr.method, u.RequestURI())
		}
	}
	if want.value && len(got) == 0 {
		return fmt.Errorf("the comment says the answer has the value; %s", answer)
	}
	if want.expiresIn > 0 {
		at, err := time.Parse(time.RFC3339Nano, resp.Header.Get("X-Expires-At"))
		if left := time.Until(at); err != nil || left <= 0 || left > want.expiresIn {
			return fmt.Errorf("the comment says X-Expires-At in %v; the answer has %q (%v)", want.expiresIn, resp.Header.Get("X-Expires-At"), err)
		}
	}
	if want.again {
		// "also when the key was absent": the same request once the
		// first one has removed it.
		again, b, err := send()
		if err != nil {
			return err
		}
		if again.StatusCode != resp.StatusCode {
			return fmt.Errorf("the comment says %d also when the key was absent; the same request again answered %d %.300s", resp.StatusCode, again.StatusCode, b)
		}
	}
	r.t.Logf("README.md:%d: %s %s: %d (want %+v)", ex.line, cr.method, u.RequestURI(), resp.StatusCode, want)
	return nil
}

// placeholder resolves a <placeholder> of an example's header.
func (r *readmeRunner) placeholder(name string, hc *http.Client, u *url.URL, headers [][2]string) (string, error) {
	switch name {
	case "the ETag":
		// The version this node holds now: the ETag of a GET of the
		// same URL, as the README says.
		req, err := http.NewRequest(http.MethodGet, u.String(), nil)
		if err != nil {
			return "", err
		}
		for _, h := range headers {
			if strings.EqualFold(h[0], "Authorization") {
				req.Header.Set(h[0], h[1])
			}
		}
		resp, err := hc.Do(req)
		if err != nil {
			return "", err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		etag := resp.Header.Get("ETag")
		if resp.StatusCode != http.StatusOK || etag == "" {
			return "", fmt.Errorf("<the ETag>: GET %s answered %d with ETag %q", u.RequestURI(), resp.StatusCode, etag)
		}
		return etag, nil
	}
	return "", fmt.Errorf("placeholder <%s>: the test does not know what to put there; teach readmeRunner.placeholder", name)
}

// redis runs a redis-cli example (one command) on the node's RESP port:
// the reply must not be an error.
func (r *readmeRunner) redis(ex readmeExample, tg readmeTarget) error {
	var args []string
	for i := 1; i < len(ex.words); i++ {
		switch w := ex.words[i]; {
		case w == "-p":
			i++ // the port: the test node's
		case strings.HasPrefix(w, "-") && len(args) == 0:
			return fmt.Errorf("redis-cli flag %s: the test does not know it", w)
		default:
			args = append(args, w)
		}
	}
	if len(args) == 0 {
		return fmt.Errorf("redis-cli without a command: the test runs one command per example")
	}
	conn, err := net.DialTimeout("tcp", tg.p.resp, 10*time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return err
	}
	reply, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return fmt.Errorf("reading the reply: %v", err)
	}
	if strings.HasPrefix(reply, "-") {
		return fmt.Errorf("the node replied %q", strings.TrimSpace(reply))
	}
	r.t.Logf("README.md:%d: %q: %q", ex.line, args, strings.TrimSpace(reply))
	return nil
}

// readmeFixtures are the files the examples send (@FILE) or name
// (--cacert FILE), written into the examples' directory.
func readmeFixtures(t *testing.T, dir string, certs certFiles) {
	t.Helper()
	ca, err := os.ReadFile(certs.ca)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"logo.png":   append([]byte("\x89PNG\r\n\x1a\n"), bytes.Repeat([]byte{0, 1, 2, 3}, 256)...),
		"backup.tar": bytes.Repeat([]byte("a backup of the README examples\n"), 4096), // 128 KiB: more than one Range
		"v1.json":    []byte(`{"version": 1, "name": "config"}` + "\n"),
		"ca.pem":     ca,
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// waitReadyTLS waits for GET /readyz of a node that serves TLS.
func waitReadyTLS(t *testing.T, p *proc, base string, hc *http.Client) {
	t.Helper()
	waitFor(t, 30*time.Second, "/readyz over TLS", func() bool {
		if p.exited() {
			t.Fatalf("node exited before it was ready: %v\n%s", p.err, p.stderr.String())
		}
		resp, err := hc.Get(base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

// TestReadmeCurlExamples runs every curl example of README.md's sh blocks,
// in README order, against real nodes, and checks what its comments say:
// the status they name (else a 2xx or 3xx), the headers they name, "no
// body", and the keys and numbers of a JSON sample. The examples of the
// Security section run on a node with a client token ($TOKEN) and, for
// https://, on one that also serves TLS; every other example on one node on
// its defaults. A redis-cli line runs too, as the curl below it needs it.
func TestReadmeCurlExamples(t *testing.T) {
	needBinary(t)
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(string(b))
	curls := 0
	for _, ex := range examples {
		if strings.HasPrefix(strings.TrimSpace(ex.text), "curl ") {
			curls++
		}
	}
	if curls == 0 {
		t.Fatal("found no curl example in README.md's sh blocks")
	}

	dir := t.TempDir()
	certs := makeCerts(t)
	readmeFixtures(t, dir, certs)

	plain := startNode(t, t.TempDir())
	token := startNode(t, t.TempDir(), "--auth-token", testAdminToken)
	secure := startNode(t, t.TempDir(), "--auth-token", testAdminToken, "--tls-cert", certs.cert, "--tls-key", certs.key)
	plain.waitReady(t)
	token.waitReady(t)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(mustRead(t, certs.ca))
	tlsClient := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}}
	defer tlsClient.CloseIdleConnections()
	secureURL := strings.Replace(secure.url, "http://", "https://", 1)
	waitReadyTLS(t, secure, secureURL, tlsClient)

	targets := map[string]readmeTarget{
		"plain":  {p: plain, base: mustURL(t, plain.url)},
		"token":  {p: token, base: mustURL(t, token.url)},
		"secure": {p: secure, base: mustURL(t, secureURL)},
	}
	r := &readmeRunner{t: t, dir: dir}

	// The Security examples read greeting, which the first example of the
	// README writes: it runs on their nodes first, with the
	// Authorization header the README says every example needs on a node
	// with client tokens.
	first := examples[0]
	if first.err != nil || len(first.words) < 3 || !slices.Equal(first.words[:3], []string{"curl", "-X", "PUT"}) || !strings.Contains(first.text, "/cache/greeting") {
		t.Fatalf("%s: the first example no longer writes greeting, which the Security examples read; give them another way to get it", first)
	}
	for _, name := range []string{"token", "secure"} {
		seed := first
		seed.text += ` -H "Authorization: Bearer $TOKEN"`
		seed.words = append(slices.Clone(first.words), "-H", "Authorization: Bearer "+testAdminToken)
		if targets[name].base.Scheme == "https" {
			seed.text += " --cacert ca.pem (over https)"
			for i, w := range seed.words {
				if strings.HasPrefix(w, "localhost:8000") {
					seed.words[i] = "https://" + w
				}
			}
			seed.words = append(seed.words, "--cacert", "ca.pem")
		}
		if !r.run(seed, targets[name]) {
			t.FailNow()
		}
	}

	for _, ex := range examples {
		tg := targets["plain"]
		if ex.section == "Security" {
			tg = targets["token"]
			if slices.ContainsFunc(ex.words, func(w string) bool { return strings.HasPrefix(w, "https://") }) {
				tg = targets["secure"]
			}
		}
		r.run(ex, tg)
	}
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// readmeErrorCodes returns the codes of README.md's paragraph that starts
// "Errors are always JSON", with their statuses, and the example answer it
// gives.
func readmeErrorCodes(t testing.TB) (codes map[string]int, example string) {
	t.Helper()
	b, err := os.ReadFile(readmePath)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\nErrors are always JSON")
	if !ok {
		t.Fatal(`README.md has no paragraph starting "Errors are always JSON"`)
	}
	para, _, _ := strings.Cut(rest, "\n\n")
	codes = map[string]int{}
	for _, m := range regexp.MustCompile("`([a-z_]+)` \\((\\d{3})").FindAllStringSubmatch(para, -1) {
		n, _ := strconv.Atoi(m[2])
		if old, dup := codes[m[1]]; dup && old != n {
			t.Errorf("README.md lists code %s with %d and %d", m[1], old, n)
		}
		codes[m[1]] = n
	}
	if len(codes) == 0 {
		t.Fatalf("README.md's error paragraph lists no code: %s", para)
	}
	if m := regexp.MustCompile("`(\\d{3} \\{[^`]*\\})`").FindStringSubmatch(para); m != nil {
		example = m[1]
	}
	return codes, example
}

// httpdErrorCodes parses the httpd package and returns its error codes
// (string constants named Code... or code...) with every status it answers
// each with: the http.Status... constants (or "HTTP/1.1 NNN" answers) that
// go with a use of the code in the same composite literal, call or
// statement, or with a use of the variable or field the code's body is
// kept in.
func httpdErrorCodes(t testing.TB) map[string]map[int]bool {
	t.Helper()
	fset := token.NewFileSet()
	dir := filepath.Join("..", "..", "httpd")
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}

	codeName := regexp.MustCompile(`^[cC]ode[A-Z]`)
	values := map[string]string{} // constant -> code
	decls := map[*ast.Ident]bool{}
	for _, f := range files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, s := range gd.Specs {
				vs := s.(*ast.ValueSpec)
				for i, n := range vs.Names {
					if !codeName.MatchString(n.Name) || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, err := strconv.Unquote(lit.Value)
						if err != nil {
							t.Fatal(err)
						}
						values[n.Name], decls[n] = v, true
					}
				}
			}
		}
	}
	if len(values) == 0 {
		t.Fatal("found no Code constant in httpd")
	}

	httpStatus := netHTTPStatuses(t)
	rawStatus := regexp.MustCompile(`^"HTTP/1\.[01] (\d{3}) `)
	statusesIn := func(n ast.Node) map[int]bool {
		found := map[int]bool{}
		ast.Inspect(n, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.SelectorExpr:
				if x, ok := n.X.(*ast.Ident); ok && x.Name == "http" && strings.HasPrefix(n.Sel.Name, "Status") {
					s, ok := httpStatus[n.Sel.Name]
					if !ok {
						t.Fatalf("http.%s: the test does not know its number", n.Sel.Name)
					}
					found[s] = true
				}
			case *ast.BasicLit:
				if m := rawStatus.FindStringSubmatch(n.Value); m != nil {
					s, _ := strconv.Atoi(m[1])
					found[s] = true
				}
			}
			return true
		})
		return found
	}

	// uses finds the identifiers under root that match, with the path
	// of nodes from root down to each.
	type use struct {
		path []ast.Node // root first, the identifier last
	}
	uses := func(root ast.Node, match func(*ast.Ident) bool) []use {
		var out []use
		var stack []ast.Node
		ast.Inspect(root, func(n ast.Node) bool {
			if n == nil {
				stack = stack[:len(stack)-1]
				return false
			}
			stack = append(stack, n)
			if id, ok := n.(*ast.Ident); ok && match(id) {
				out = append(out, use{path: slices.Clone(stack)})
			}
			return true
		})
		return out
	}
	// statusesOf walks up from a use to its statement: the first node
	// with statuses gives them; else it follows the name the value is
	// bound to (an assignment's left side, a var, a field of a composite
	// literal) to that name's uses, in the function for a local and in
	// the package for the rest.
	var statusesOf func(u use, depth int) map[int]bool
	statusesOf = func(u use, depth int) map[int]bool {
		found := map[int]bool{}
		if depth > 3 {
			return found
		}
		var bound *ast.Ident
		var fn ast.Node
		for _, n := range u.path {
			if fd, ok := n.(*ast.FuncDecl); ok {
				fn = fd
			}
		}
		for i := len(u.path) - 2; i >= 0; i-- {
			n := u.path[i]
			if _, ok := n.(ast.Decl); ok {
				break
			}
			if _, ok := n.(*ast.Field); ok {
				break
			}
			if s := statusesIn(n); len(s) > 0 {
				return s
			}
			if kv, ok := n.(*ast.KeyValueExpr); ok && bound == nil {
				if k, ok := kv.Key.(*ast.Ident); ok && k.Name != "Code" { // Error.Code: its Status is beside it
					bound = k
				}
			}
			var lhs []ast.Expr
			switch n := n.(type) {
			case *ast.AssignStmt:
				lhs = n.Lhs
			case *ast.ValueSpec:
				for _, id := range n.Names {
					lhs = append(lhs, id)
				}
			}
			if lhs != nil {
				if bound == nil {
					for _, l := range lhs {
						switch l := l.(type) {
						case *ast.Ident:
							if l.Name != "_" {
								bound = l
							}
						case *ast.SelectorExpr:
							bound = l.Sel
						}
						if bound != nil {
							break
						}
					}
				}
				break
			}
			if _, ok := n.(ast.Stmt); ok {
				break
			}
		}
		if bound == nil {
			return found
		}
		// A local variable: its uses in its function, by object; a
		// field or a package variable: its uses by name in the package.
		var roots []ast.Node
		match := func(id *ast.Ident) bool { return id.Name == bound.Name && id != bound }
		if fn != nil && bound.Obj != nil && bound.Obj.Kind == ast.Var && isInside(fn, bound.Obj.Decl) {
			roots = []ast.Node{fn}
			match = func(id *ast.Ident) bool { return id.Obj == bound.Obj && id != bound }
		} else {
			for _, f := range files {
				roots = append(roots, f)
			}
		}
		for _, root := range roots {
			for _, v := range uses(root, match) {
				for s := range statusesOf(v, depth+1) {
					found[s] = true
				}
			}
		}
		return found
	}

	out := map[string]map[int]bool{}
	for name, code := range values {
		out[code] = map[int]bool{}
		for _, f := range files {
			for _, u := range uses(f, func(id *ast.Ident) bool { return id.Name == name && !decls[id] }) {
				for s := range statusesOf(u, 0) {
					out[code][s] = true
				}
			}
		}
	}
	return out
}

// netHTTPStatuses returns the Status constants of net/http by name, from
// its source in GOROOT.
func netHTTPStatuses(t testing.TB) map[string]int {
	t.Helper()
	goroot, err := exec.Command(goTool(), "env", "GOROOT").Output()
	if err != nil {
		t.Fatalf("go env GOROOT: %v", err)
	}
	path := filepath.Join(strings.TrimSpace(string(goroot)), "src", "net", "http", "status.go")
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, d := range f.Decls {
		gd, ok := d.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, sp := range gd.Specs {
			vs := sp.(*ast.ValueSpec)
			for i, n := range vs.Names {
				if i < len(vs.Values) {
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.INT {
						out[n.Name], _ = strconv.Atoi(lit.Value)
					}
				}
			}
		}
	}
	if out["StatusOK"] != http.StatusOK || out["StatusTeapot"] != http.StatusTeapot {
		t.Fatalf("%s: found no Status constants", path)
	}
	return out
}

// isInside reports whether the declaration decl (an ast.Node) lies inside n.
func isInside(n ast.Node, decl any) bool {
	d, ok := decl.(ast.Node)
	return ok && d.Pos() >= n.Pos() && d.End() <= n.End()
}

// TestReadmeErrorCodes: README.md's list of error codes is exactly the
// set of codes of the httpd package, each with the status the package
// answers it with.
func TestReadmeErrorCodes(t *testing.T) {
	readme, example := readmeErrorCodes(t)
	code := httpdErrorCodes(t)
	for _, c := range slices.Sorted(maps.Keys(code)) {
		t.Logf("httpd answers %s with %v", c, slices.Sorted(maps.Keys(code[c])))
	}
	for c, statuses := range code {
		want, ok := readme[c]
		switch {
		case !ok:
			t.Errorf("httpd answers code %s (status %v); README.md's list of codes does not have it", c, slices.Sorted(maps.Keys(statuses)))
		case len(statuses) == 0:
			t.Errorf("httpd has code %s, but the test found no status it is answered with", c)
		case len(statuses) != 1 || !statuses[want]:
			t.Errorf("README.md: %s (%d); httpd answers it with %v", c, want, slices.Sorted(maps.Keys(statuses)))
		}
	}
	for c, s := range readme {
		if _, ok := code[c]; !ok {
			t.Errorf("README.md lists code %s (%d), which httpd does not have", c, s)
		}
	}
	if example != "" {
		var body struct {
			Code string `json:"code"`
		}
		_, js, _ := strings.Cut(example, " ")
		if err := json.Unmarshal([]byte(js), &body); err != nil || body.Code == "" {
			t.Errorf("README.md's example error %s is not a JSON error body: %v", example, err)
		} else if s, ok := readme[body.Code]; !ok || !strings.HasPrefix(example, strconv.Itoa(s)+" ") {
			t.Errorf("README.md's example error %s: code %s is %d in the list", example, body.Code, s)
		}
	}
}

// TestReadmeErrorExample: the example error of README.md, a value over
// the limit, is what a node on its defaults answers, word for word.
func TestReadmeErrorExample(t *testing.T) {
	needBinary(t)
	_, example := readmeErrorCodes(t)
	m := regexp.MustCompile(`^(\d{3}) (.*the value is (\d+) bytes.*)$`).FindStringSubmatch(example)
	if m == nil {
		t.Skipf("README.md's example error %q is not the one of a value too large; this test knows only that one", example)
	}
	p := startNode(t, t.TempDir())
	p.waitReady(t)
	size, _ := strconv.Atoi(m[3])
	req, err := http.NewRequest(http.MethodPut, p.url+"/cache/too-large", bytes.NewReader(make([]byte, size)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if fmt.Sprintf("%d %s", resp.StatusCode, bytes.TrimSpace(got)) != m[1]+" "+m[2] {
		t.Errorf("README.md says a PUT of a %d-byte value answers\n\t%s %s\nthe node answered\n\t%d %s", size, m[1], m[2], resp.StatusCode, got)
	}
}
