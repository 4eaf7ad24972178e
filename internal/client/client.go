package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Sentinel errors; the CLI maps them to exit codes.
var (
	ErrUnreachable = errors.New("server unreachable")
	ErrRefused     = errors.New("server refused the request")
)

// Problem is an API error (RFC 9457 problem details).
type Problem struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Detail string `json:"detail"`
	Field  string `json:"field,omitempty"`
	Pos    *int   `json:"position,omitempty"`
}

func (p *Problem) Error() string {
	s := fmt.Sprintf("%s (%d): %s", p.Code, p.Status, p.Detail)
	if p.Field != "" {
		s += " [field " + p.Field + "]"
	}
	return s
}

// Unwrap lets errors.Is(err, ErrRefused) match every API error.
func (p *Problem) Unwrap() error { return ErrRefused }

// Client talks to one server.
type Client struct {
	Server string // e.g. http://127.0.0.1:8080
	Token  string
	HTTP   *http.Client
}

// New returns a client with sane timeouts.
func New(server, token string) *Client {
	return &Client{Server: strings.TrimRight(server, "/"), Token: token, HTTP: &http.Client{Timeout: 5 * time.Minute}}
}

// Do sends a request and decodes a JSON answer into out (when not nil).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, hdr http.Header, out any) error {
	u := c.Server + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	for k, vs := range hdr {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, c.Server, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrUnreachable, err)
	}
	if resp.StatusCode >= 400 {
		p := &Problem{Status: resp.StatusCode}
		if json.Unmarshal(data, p) != nil || p.Code == "" {
			p.Code = strings.ToLower(strings.ReplaceAll(http.StatusText(resp.StatusCode), " ", "_"))
			p.Detail = strings.TrimSpace(string(data))
		}
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if s, err := strconv.Atoi(ra); err == nil {
				return &retryAfter{Problem: p, after: time.Duration(s) * time.Second}
			}
		}
		return p
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// retryAfter is a problem the server asked to retry later.
type retryAfter struct {
	*Problem
	after time.Duration
}

// JSON posts v as JSON and decodes the answer into out.
func (c *Client) JSON(ctx context.Context, method, path string, v, out any) error {
	var body io.Reader
	hdr := http.Header{}
	if v != nil {
		b, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encode request: %w", err)
		}
		body = bytes.NewReader(b)
		hdr.Set("Content-Type", "application/json")
	}
	return c.Do(ctx, method, path, nil, body, hdr, out)
}
