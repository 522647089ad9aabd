// Package strictjson refuses JSON that two parsers could read differently.
// Signed payloads and manifests are checked with it before they are decoded
// with encoding/json, whose leniency (case-insensitive keys, last duplicate
// wins) an attacker could otherwise use to show a verifier one value and an
// installer another (THREATS.md BND-08).
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxDepth is the deepest nesting of objects and arrays Check accepts.
const MaxDepth = 32

// Check rejects what encoding/json would silently accept: an
// object key repeated, also up to case (encoding/json matches keys
// case-insensitively and the last one wins), nesting deeper than
// MaxDepth, and anything after the value.
func Check(raw []byte) error {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := checkValue(dec, 0); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("data after the JSON value")
	}
	return nil
}

// checkValue reads one value from dec and checks it, recursing at most
// MaxDepth levels.
func checkValue(dec *json.Decoder, depth int) error {
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	delim, ok := tok.(json.Delim)
	if !ok {
		return nil // a scalar
	}
	if depth == MaxDepth {
		return fmt.Errorf("nested deeper than %d", MaxDepth)
	}
	switch delim {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			tok, err := dec.Token()
			if err != nil {
				return err
			}
			key, ok := tok.(string)
			if !ok {
				return fmt.Errorf("object key %v is not a string", tok)
			}
			// encoding/json's own folding: the Kelvin sign matches "k",
			// the long s matches "s".
			folded := strings.ToUpper(strings.ToLower(key))
			if seen[folded] {
				return fmt.Errorf("duplicate key %q", key)
			}
			seen[folded] = true
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
	case '[':
		for dec.More() {
			if err := checkValue(dec, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}
