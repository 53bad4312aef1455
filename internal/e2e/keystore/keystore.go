// Package keystore keeps a client's end-to-end keys on disk, per server and
// user, in a directory the caller names (the client passes
// <config-dir>/<server-cert-sha256>/<user>/). Two files live there:
//
//   - identity.age: the identity secrets (opaque bytes to this package) and
//     a 32-byte master secret, encrypted to a passphrase with age's scrypt
//     recipient. Written once, by Create or Import.
//   - state.bin: opaque state bytes (prekey secrets, sequence counters,
//     replay windows, pins), written often, sealed with XChaCha20-Poly1305
//     under a key derived from the master secret:
//     "sslm-st\x01" ‖ nonce (24 bytes) ‖ ciphertext ‖ tag (16 bytes), the
//     8-byte magic as additional data.
//
// Every file is 0600 and the directory 0700; Open refuses a store that
// others can read. Files are replaced by durable.WriteFile (temporary file,
// fsync, rename, directory fsync), so a crash at any point leaves the old
// or the new version, never a mix; a save that returned nil survives a
// crash. A state file that fails authentication is an error
// (ErrStateCorrupt), never silently replaced by an empty state.
//
// Limits: the state is not protected against rollback: whoever can write
// the directory can put back an older state.bin (sealed under the same
// key), which resets replay windows to that older point. One process
// should use a store at a time: two processes saving the same store each
// overwrite the other's state.
package keystore

import (
	"bufio"
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"filippo.io/age"
	"filippo.io/age/armor"
	"golang.org/x/crypto/chacha20poly1305"

	"sslmessager/internal/durable"
)

// File names inside a store's directory, and their modes.
const (
	IdentityFile = "identity.age"
	StateFile    = "state.bin"
	DirMode      = 0o700
	FileMode     = 0o600
)

// Size limits, in bytes: the identity secrets and the state a caller may
// store. Larger input is refused with ErrTooLarge; larger files are
// refused when read.
const (
	MaxSecretsBytes = 64 << 10
	MaxStateBytes   = 16 << 20
)

// WorkFactor is the scrypt work factor (log2 of N, r=8, p=1) of the files
// this package writes. MaxWorkFactor is the highest accepted when reading,
// which bounds the work a planted or imported file can cost (2^22: about
// 16 s and 4 GiB). A file is opened at the work factor written in its own
// scrypt stanza, so stores written at another factor (2^18 before) open
// unchanged; a store keeps its factor until its passphrase changes
// (Rekey writes the file anew, at WorkFactor).
//
// Why 2^16 (64 MiB, about 0.26 s on one core; 2^15: 0.13 s, 2^17: 0.55 s,
// 2^18: 1.1 s and 256 MiB; BenchmarkOpenWorkFactor): every client process
// pays it once at start, and a script runs one per send, upload or
// download, so 2^18 costs a script user a second and 256 MiB per command.
// The scrypt cost only matters against someone who has the file and not
// the passphrase: a stolen disk or backup. The passphrase defaults to the
// log-in password, whose bcrypt hash (cost 10, tens of milliseconds per
// guess) the server keeps, so a slower key store would not make that
// password harder to guess for whoever holds the server's users.csv;
// against a thief with the disk alone, 2^16 still makes each guess cost
// 64 MiB of memory-hard work (as bcrypt does not), roughly the
// guessing cost of the log-in hash or more. A user who wants more sets a
// passphrase of its own (--key-passphrase): its strength, not the work
// factor, is what protects the store.
//
// An export (keys export) is written at ExportWorkFactor: it is made once,
// and it leaves the machine (mail, a USB stick), so it gets the slower
// factor age itself uses for passphrases.
const (
	WorkFactor       = 16
	ExportWorkFactor = WorkFactor + 2
	MaxWorkFactor    = 22
)

// scryptLogN is the work factor used for writing; tests lower it.
var scryptLogN = WorkFactor

// Errors. They are wrapped with the file or directory concerned; test
// with errors.Is.
var (
	ErrPassphrase      = errors.New("keystore: wrong passphrase")
	ErrEmptyPassphrase = errors.New("keystore: empty passphrase")
	ErrExists          = errors.New("keystore: an identity already exists")
	ErrNoIdentity      = errors.New("keystore: no identity")
	ErrNoState         = errors.New("keystore: state file missing")
	ErrStateCorrupt    = errors.New("keystore: state file fails authentication (damaged or not this identity's)")
	ErrCorrupt         = errors.New("keystore: malformed file")
	ErrTooLarge        = errors.New("keystore: too large")
	ErrPermissions     = errors.New("keystore: others may access the key store")
)

const (
	masterSize = 32
	stateInfo  = "sslm keystore state v1"
)

// Magic prefixes (8 bytes) of the plaintexts and of the state file.
var (
	identityMagic = []byte("sslm-id\x01")
	stateMagic    = []byte("sslm-st\x01")
	exportMagic   = []byte("sslm-ex\x01")
)

// stateOverhead is the size of a sealed state beyond its plaintext.
const stateOverhead = 8 + chacha20poly1305.NonceSizeX + chacha20poly1305.Overhead

// Store is an open key store. Its methods are safe for concurrent use.
type Store struct {
	dir      string
	secrets  []byte
	master   []byte
	stateKey []byte

	mu sync.Mutex // serializes state writes and reads
}

// Create makes a new store in dir (created with mode 0700 if missing, and
// set to 0700) holding secrets (1 to MaxSecretsBytes bytes), encrypted under
// passphrase, with an empty state. It refuses with ErrExists when dir
// already holds an identity.
func Create(dir, passphrase string, secrets []byte) (*Store, error) {
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	if len(secrets) == 0 || len(secrets) > MaxSecretsBytes {
		return nil, fmt.Errorf("%w: secrets are %d bytes, want 1 to %d", ErrTooLarge, len(secrets), MaxSecretsBytes)
	}
	master := make([]byte, masterSize)
	if _, err := rand.Read(master); err != nil {
		return nil, err
	}
	return install(dir, passphrase, master, secrets, nil, false)
}

// install writes a store into dir: the state first, then the identity, so
// that an identity on disk always has a state beside it. A crash between
// the two leaves the old identity (or none) with a state it cannot open:
// a loud ErrStateCorrupt, and running the same Create or Import again
// repairs it.
func install(dir, passphrase string, master, secrets, state []byte, force bool) (*Store, error) {
	if err := os.MkdirAll(dir, DirMode); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	if err := os.Chmod(dir, DirMode); err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	idPath := filepath.Join(dir, IdentityFile)
	if _, err := os.Lstat(idPath); err == nil && !force {
		return nil, fmt.Errorf("%w in %s", ErrExists, dir)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	s, err := newStore(dir, master, secrets)
	if err != nil {
		return nil, err
	}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	if err := s.SaveState(state); err != nil {
		return nil, err
	}
	plain := make([]byte, 0, len(identityMagic)+masterSize+len(secrets))
	plain = append(append(append(plain, identityMagic...), master...), secrets...)
	err = durable.WriteFile(idPath, FileMode, func(w io.Writer) error {
		return encryptTo(w, passphrase, plain, scryptLogN)
	})
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	return s, nil
}

func newStore(dir string, master, secrets []byte) (*Store, error) {
	key, err := hkdf.Key(sha256.New, master, nil, stateInfo, chacha20poly1305.KeySize)
	if err != nil {
		return nil, err
	}
	return &Store{dir: dir, secrets: bytes.Clone(secrets), master: bytes.Clone(master), stateKey: key}, nil
}

func (s *Store) removeTemps() error {
	for _, name := range []string{IdentityFile, StateFile} {
		if err := durable.RemoveTemps(filepath.Join(s.dir, name)); err != nil {
			return fmt.Errorf("keystore: %w", err)
		}
	}
	return nil
}

// Open opens the store in dir with passphrase. Errors: ErrNoIdentity
// (also fs.ErrNotExist) when dir holds none, ErrPassphrase for a wrong
// passphrase, ErrPermissions when the directory or a file is open to group
// or others (the error says which and how to fix it), ErrCorrupt for a
// file that decrypts to something else. Temporary files a crash left
// behind are removed.
func Open(dir, passphrase string) (*Store, error) {
	if passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	idPath := filepath.Join(dir, IdentityFile)
	if err := checkPrivate(idPath, FileMode, false); err != nil {
		return nil, err
	}
	if err := checkPrivate(dir, DirMode, true); err != nil {
		return nil, err
	}
	if err := checkPrivate(filepath.Join(dir, StateFile), FileMode, false); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	_, master, secrets, err := readIdentity(idPath, passphrase)
	if err != nil {
		return nil, err
	}
	s, err := newStore(dir, master, secrets)
	if err != nil {
		return nil, err
	}
	if err := s.removeTemps(); err != nil {
		return nil, err
	}
	return s, nil
}

// readIdentity decrypts identity.age at path with passphrase and splits
// it (parseIdentity); errors name the file.
func readIdentity(path, passphrase string) (plain, master, secrets []byte, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	plain, err = decryptFrom(f, passphrase, len(identityMagic)+masterSize+MaxSecretsBytes)
	if err == nil {
		master, secrets, err = parseIdentity(plain)
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return plain, master, secrets, nil
}

// parseIdentity splits the plaintext of identity.age: magic ‖ master (32
// bytes) ‖ secrets (at least 1 byte).
func parseIdentity(plain []byte) (master, secrets []byte, err error) {
	n := len(identityMagic)
	if len(plain) <= n+masterSize || !bytes.Equal(plain[:n], identityMagic) {
		return nil, nil, fmt.Errorf("%w: not an identity", ErrCorrupt)
	}
	return plain[n : n+masterSize], plain[n+masterSize:], nil
}

// checkPrivate refuses path when it is missing (ErrNoIdentity for the
// store's own paths), not a directory/regular file as expected, or
// readable by group or others. Only where file modes mean something.
func checkPrivate(path string, want fs.FileMode, isDir bool) error {
	var fi fs.FileInfo
	var err error
	if isDir {
		fi, err = os.Stat(path)
	} else {
		fi, err = os.Lstat(path)
	}
	if errors.Is(err, fs.ErrNotExist) {
		if filepath.Base(path) == StateFile {
			return err
		}
		return fmt.Errorf("%w in %s: %w", ErrNoIdentity, path, fs.ErrNotExist)
	}
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	if isDir != fi.IsDir() || !isDir && !fi.Mode().IsRegular() {
		return fmt.Errorf("%w: %s is not a regular %s", ErrCorrupt, path, map[bool]string{true: "directory", false: "file"}[isDir])
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o, want %04o (chmod %o %s)", ErrPermissions, path, fi.Mode().Perm(), want, want, path)
	}
	return nil
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Secrets returns a copy of the identity secrets given to Create or
// Import.
func (s *Store) Secrets() []byte { return bytes.Clone(s.secrets) }

// SaveState replaces the stored state with state (at most MaxStateBytes
// bytes; nil stores an empty state). When it returns nil the new state is
// on disk and survives a crash; on an error the old state is still there.
func (s *Store) SaveState(state []byte) error {
	if len(state) > MaxStateBytes {
		return fmt.Errorf("%w: state is %d bytes, limit %d", ErrTooLarge, len(state), MaxStateBytes)
	}
	sealed, err := sealState(s.stateKey, state)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	err = durable.WriteFile(filepath.Join(s.dir, StateFile), FileMode, func(w io.Writer) error {
		_, err := w.Write(sealed)
		return err
	})
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}

// LoadState returns the state last saved (empty, not nil, after Create).
// Errors: ErrNoState (also fs.ErrNotExist) when the file is gone,
// ErrStateCorrupt when it is damaged, truncated, too large or sealed under
// another identity. The file is left as it is in every case.
func (s *Store) LoadState() ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.loadState()
}

// loadState is LoadState; must hold s.mu.
func (s *Store) loadState() ([]byte, error) {
	path := filepath.Join(s.dir, StateFile)
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s: %w", ErrNoState, path, fs.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("keystore: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxStateBytes+stateOverhead+1))
	if err != nil {
		return nil, fmt.Errorf("keystore: %s: %w", path, err)
	}
	state, err := openState(s.stateKey, data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return state, nil
}

// sealState returns the state file's bytes for state.
func sealState(key, state []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, len(stateMagic)+aead.NonceSize(), stateOverhead+len(state))
	copy(out, stateMagic)
	nonce := out[len(stateMagic):]
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return aead.Seal(out, nonce, state, stateMagic), nil
}

// openState authenticates and decrypts a state file's bytes. Any damage
// is ErrStateCorrupt.
func openState(key, data []byte) ([]byte, error) {
	if len(data) < stateOverhead || len(data) > MaxStateBytes+stateOverhead {
		return nil, fmt.Errorf("%w: %d bytes", ErrStateCorrupt, len(data))
	}
	n := len(stateMagic)
	if !bytes.Equal(data[:n], stateMagic) {
		return nil, fmt.Errorf("%w: not a state file", ErrStateCorrupt)
	}
	aead, err := chacha20poly1305.NewX(key)
	if err != nil {
		return nil, err
	}
	nonce := data[n : n+aead.NonceSize()]
	state, err := aead.Open(make([]byte, 0, len(data)-stateOverhead), nonce, data[n+aead.NonceSize():], stateMagic)
	if err != nil {
		return nil, ErrStateCorrupt
	}
	return state, nil
}

// Export writes the identity secrets and the current state to w as one
// age file, ASCII-armored (-----BEGIN AGE ENCRYPTED FILE-----), encrypted
// to exportPassphrase with scrypt: what `keys export` produces and Import
// reads. It fails when the state cannot be loaded.
func (s *Store) Export(w io.Writer, exportPassphrase string) error {
	if exportPassphrase == "" {
		return ErrEmptyPassphrase
	}
	s.mu.Lock()
	state, err := s.loadState()
	s.mu.Unlock()
	if err != nil {
		return err
	}
	payload := make([]byte, 0, len(exportMagic)+masterSize+8+len(s.secrets)+len(state))
	payload = append(append(payload, exportMagic...), s.master...)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(s.secrets)))
	payload = append(payload, s.secrets...)
	payload = binary.BigEndian.AppendUint32(payload, uint32(len(state)))
	payload = append(payload, state...)
	aw := armor.NewWriter(w)
	if err := encryptTo(aw, exportPassphrase, payload, scryptLogN+ExportWorkFactor-WorkFactor); err != nil {
		return fmt.Errorf("keystore: export: %w", err)
	}
	if err := aw.Close(); err != nil {
		return fmt.Errorf("keystore: export: %w", err)
	}
	return nil
}

// maxExportPlain is the largest export payload.
const maxExportPlain = 8 + masterSize + 4 + MaxSecretsBytes + 4 + MaxStateBytes

// Import reads a file written by Export (armored or binary) with
// exportPassphrase and installs it as the store in dir under passphrase,
// as Create does. It refuses with ErrExists when dir holds an identity,
// unless force. ErrPassphrase for a wrong exportPassphrase; ErrCorrupt or
// ErrTooLarge for input that is not an export. Nothing in dir changes
// before the input has been read and authenticated. A forced import over
// an existing store that a crash interrupts leaves that store failing with
// ErrStateCorrupt: run the import again.
func Import(r io.Reader, exportPassphrase, dir, passphrase string, force bool) (*Store, error) {
	if exportPassphrase == "" || passphrase == "" {
		return nil, ErrEmptyPassphrase
	}
	br := bufio.NewReader(io.LimitReader(r, 2*maxExportPlain))
	var in io.Reader = br
	if head, _ := br.Peek(len(armor.Header)); string(head) == armor.Header {
		in = armor.NewReader(br)
	}
	payload, err := decryptFrom(in, exportPassphrase, maxExportPlain)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	master, secrets, state, err := parseExport(payload)
	if err != nil {
		return nil, fmt.Errorf("import: %w", err)
	}
	return install(dir, passphrase, master, secrets, state, force)
}

// parseExport splits an export payload: magic ‖ master (32) ‖ u32 n ‖
// secrets (n, 1 to MaxSecretsBytes) ‖ u32 m ‖ state (m, at most
// MaxStateBytes), nothing after.
func parseExport(p []byte) (master, secrets, state []byte, err error) {
	bad := func(what string) ([]byte, []byte, []byte, error) {
		return nil, nil, nil, fmt.Errorf("%w: export %s", ErrCorrupt, what)
	}
	n := len(exportMagic)
	if len(p) < n+masterSize+4 || !bytes.Equal(p[:n], exportMagic) {
		return bad("header")
	}
	master, p = p[n:n+masterSize], p[n+masterSize:]
	ls := binary.BigEndian.Uint32(p)
	p = p[4:]
	if ls == 0 || ls > MaxSecretsBytes || uint64(len(p)) < uint64(ls)+4 {
		return bad("secrets length")
	}
	secrets, p = p[:ls], p[ls:]
	lt := binary.BigEndian.Uint32(p)
	p = p[4:]
	if lt > MaxStateBytes || uint64(len(p)) != uint64(lt) {
		return bad("state length")
	}
	return master, secrets, p, nil
}

// encryptTo writes plain to w as an age file for passphrase.
func encryptTo(w io.Writer, passphrase string, plain []byte, logN int) error {
	rcpt, err := age.NewScryptRecipient(passphrase)
	if err != nil {
		return ErrEmptyPassphrase
	}
	rcpt.SetWorkFactor(logN)
	aw, err := age.Encrypt(w, rcpt)
	if err != nil {
		return err
	}
	if _, err := aw.Write(plain); err != nil {
		return err
	}
	return aw.Close()
}

// decryptFrom reads an age file for passphrase from r and returns at most
// max bytes of plaintext (more is ErrTooLarge).
func decryptFrom(r io.Reader, passphrase string, max int) ([]byte, error) {
	id, err := age.NewScryptIdentity(passphrase)
	if err != nil {
		return nil, ErrEmptyPassphrase
	}
	id.SetMaxWorkFactor(MaxWorkFactor)
	ar, err := age.Decrypt(r, id)
	if errors.Is(err, age.ErrIncorrectIdentity) {
		return nil, ErrPassphrase
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	plain, err := io.ReadAll(io.LimitReader(ar, int64(max)+1))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCorrupt, err)
	}
	if len(plain) > max {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, max)
	}
	return plain, nil
}

// Rekey re-encrypts identity.age under newPassphrase, provided
// oldPassphrase opens it: the key store then follows a change of the
// log-in password it was locked with. When oldPassphrase does not open it
// (the store has a passphrase of its own) it returns ErrPassphrase and
// changes nothing. The identity, the master secret and so state.bin stay
// as they are; the file is replaced whole (durable.WriteFile), so a crash
// leaves either the old or the new passphrase working, never neither.
func (s *Store) Rekey(oldPassphrase, newPassphrase string) error {
	if oldPassphrase == "" || newPassphrase == "" {
		return ErrEmptyPassphrase
	}
	idPath := filepath.Join(s.dir, IdentityFile)
	plain, _, secrets, err := readIdentity(idPath, oldPassphrase)
	if err != nil {
		return err
	}
	if !bytes.Equal(secrets, s.secrets) {
		return fmt.Errorf("%s: %w: another identity than the one this store opened", idPath, ErrCorrupt)
	}
	err = durable.WriteFile(idPath, FileMode, func(w io.Writer) error {
		return encryptTo(w, newPassphrase, plain, scryptLogN)
	})
	if err != nil {
		return fmt.Errorf("keystore: %w", err)
	}
	return nil
}
