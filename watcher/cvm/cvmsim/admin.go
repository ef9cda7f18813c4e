package cvmsim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"
)

// maxAdminBody bounds admin request bodies.
const maxAdminBody = 1 << 20

// routes wires the admin API under /_sim/ and the cloud API everywhere else.
//
//	GET    /_sim/instances[?region=R]  -> [{"InstanceId","InstanceState","Region"}]
//	PUT    /_sim/instances/{id}        {"state":"STOPPED","region":"..."} creates or changes (see adminPut)
//	DELETE /_sim/instances/{id}        releases
//	GET    /_sim/history               -> [Change]
//	GET    /_sim/operations            -> [Operation]
//	GET    /_sim/stats                 -> Stats
//	GET    /_sim/faults                -> [FaultStatus]
//	POST   /_sim/faults                Fault -> {"id":N}
//	DELETE /_sim/faults/{id}           removes one fault
//	DELETE /_sim/faults                removes every fault
//	GET    /_sim/clock                 -> {"offset":"0s","now":"..."}
//	POST   /_sim/clock                 {"offset":"10m"} sets the clock offset
//	GET    /_sim/churn                 -> {"rate":N}
//	POST   /_sim/churn                 {"rate":N} sets the churn rate (0 pauses it)
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/instances", s.adminListInstances)
	mux.HandleFunc("PUT /_sim/instances/{id}", s.adminPutInstance)
	mux.HandleFunc("DELETE /_sim/instances/{id}", s.adminDeleteInstance)
	mux.HandleFunc("GET /_sim/history", func(w http.ResponseWriter, _ *http.Request) {
		adminJSON(w, http.StatusOK, s.History())
	})
	mux.HandleFunc("GET /_sim/operations", func(w http.ResponseWriter, _ *http.Request) {
		adminJSON(w, http.StatusOK, s.Operations())
	})
	mux.HandleFunc("GET /_sim/stats", func(w http.ResponseWriter, _ *http.Request) {
		adminJSON(w, http.StatusOK, s.Stats())
	})
	mux.HandleFunc("GET /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		adminJSON(w, http.StatusOK, s.Faults())
	})
	mux.HandleFunc("POST /_sim/faults", s.adminAddFault)
	mux.HandleFunc("DELETE /_sim/faults", func(w http.ResponseWriter, _ *http.Request) {
		s.ClearFaults()
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /_sim/faults/{id}", s.adminRemoveFault)
	mux.HandleFunc("GET /_sim/clock", s.adminGetClock)
	mux.HandleFunc("POST /_sim/clock", s.adminSetClock)
	mux.HandleFunc("GET /_sim/churn", func(w http.ResponseWriter, _ *http.Request) {
		adminJSON(w, http.StatusOK, churnBody{Rate: s.Churn()})
	})
	mux.HandleFunc("POST /_sim/churn", s.adminSetChurn)
	mux.HandleFunc("/_sim/", func(w http.ResponseWriter, r *http.Request) {
		adminError(w, http.StatusNotFound, fmt.Errorf("no admin endpoint %s %s", r.Method, r.URL.Path))
	})
	mux.HandleFunc("/", s.serveAPI)
	return mux
}

func adminJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encode response"}`)
	}
	writeRaw(w, status, "application/json", append(b, '\n'))
}

func adminError(w http.ResponseWriter, status int, err error) {
	adminJSON(w, status, map[string]string{"error": err.Error()})
}

// decodeStrict decodes one JSON value into v, refusing unknown fields and
// trailing data.
func decodeStrict(w http.ResponseWriter, r *http.Request, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("decode body: %w", err)
	}
	if dec.More() {
		return errors.New("decode body: trailing data")
	}
	return nil
}

func (s *Server) adminListInstances(w http.ResponseWriter, r *http.Request) {
	region := r.URL.Query().Get("region")
	if region != "" && !s.regions[region] {
		adminError(w, http.StatusBadRequest, fmt.Errorf("region %q is not served", region))
		return
	}
	list := s.Instances(region)
	if list == nil {
		list = []Instance{}
	}
	adminJSON(w, http.StatusOK, list)
}

// adminPut is the body of PUT /_sim/instances/{id}.
//
// For a new instance, state is required; region, zone, name, instanceType
// and tags describe it (the rest is generated), and an operation (e.g.
// "RunInstances", with operationState, operationError, actor, sourceIp and
// audited) makes the creation that operation's.
//
// For an existing instance every field is optional (region, if given, must
// be the instance's; zone and instanceType cannot change): state changes
// the state; name and tags (an empty list removes every tag) replace
// theirs without a state change; restrictState and isolatedSource replace
// theirs; operation names a new operation, with a fresh request ID, as
// Update describes it (LatestOperationState from operationState, else
// FAILED with operationError, else OPERATING for a transitional state,
// else SUCCESS), made by actor (CloudAudit's Username, default "root")
// from sourceIp, known to LookUpEvents unless audited is false;
// operationState without operation moves the latest operation on. A state
// without operation or operationState leaves LatestOperation* as they are.
type adminPut struct {
	State          string  `json:"state"`
	Region         string  `json:"region,omitempty"`
	Zone           string  `json:"zone,omitempty"`
	Name           *string `json:"name,omitempty"`
	InstanceType   string  `json:"instanceType,omitempty"`
	Tags           *[]Tag  `json:"tags,omitempty"`
	RestrictState  string  `json:"restrictState,omitempty"`
	IsolatedSource string  `json:"isolatedSource,omitempty"`
	Operation      string  `json:"operation,omitempty"`
	OperationState string  `json:"operationState,omitempty"`
	OperationError string  `json:"operationError,omitempty"`
	Actor          string  `json:"actor,omitempty"`
	SourceIP       string  `json:"sourceIp,omitempty"`
	Audited        *bool   `json:"audited,omitempty"`
}

func (b adminPut) update() Update {
	return Update{
		State: b.State, Name: b.Name, Tags: b.Tags,
		RestrictState: b.RestrictState, IsolatedSource: b.IsolatedSource,
		Operation: b.Operation, OperationState: b.OperationState, OperationError: b.OperationError,
		Actor: b.Actor, SourceIP: b.SourceIP, Unaudited: b.Audited != nil && !*b.Audited,
	}
}

// adminInstance is the answer to a PUT: the instance with its latest
// operation.
type adminInstance struct {
	InstanceId               string `json:"InstanceId"`
	InstanceState            string `json:"InstanceState"`
	Region                   string `json:"Region"`
	InstanceName             string `json:"InstanceName"`
	LatestOperation          string `json:"LatestOperation,omitempty"`
	LatestOperationState     string `json:"LatestOperationState,omitempty"`
	LatestOperationRequestId string `json:"LatestOperationRequestId,omitempty"`
	LatestOperationErrorMsg  string `json:"LatestOperationErrorMsg,omitempty"`
}

func toAdminInstance(in Instance) adminInstance {
	return adminInstance{
		InstanceId: in.InstanceId, InstanceState: in.InstanceState, Region: in.Region, InstanceName: in.InstanceName,
		LatestOperation: in.LatestOperation, LatestOperationState: in.LatestOperationState,
		LatestOperationRequestId: in.LatestOperationRequestId, LatestOperationErrorMsg: in.LatestOperationErrorMsg,
	}
}

func (s *Server) adminPutInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	var body adminPut
	if err := decodeStrict(w, r, &body); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if id == "" || body.State == Absent {
		adminError(w, http.StatusBadRequest, errors.New("a non-empty id is required, and ABSENT is not a state (use DELETE)"))
		return
	}
	s.mu.Lock()
	existing, exists := s.fleet.byID[id]
	var region string
	if exists {
		region = existing.region
	}
	s.mu.Unlock()
	if exists {
		if body.Region != "" && body.Region != region {
			adminError(w, http.StatusBadRequest, fmt.Errorf("instance %q is in region %q, not %q", id, region, body.Region))
			return
		}
		if body.Zone != "" || body.InstanceType != "" {
			adminError(w, http.StatusBadRequest, fmt.Errorf("instance %q exists: zone and instanceType cannot change", id))
			return
		}
		in, err := s.Update(id, body.update())
		if err != nil {
			adminError(w, statusOf(err), err)
			return
		}
		s.log.Info("admin update", slog.String("instanceId", clip(id)), slog.String("state", clip(in.InstanceState)),
			slog.String("operation", clip(body.Operation)), slog.String("requestId", in.LatestOperationRequestId))
		adminJSON(w, http.StatusOK, toAdminInstance(in))
		return
	}
	if body.State == "" {
		adminError(w, http.StatusBadRequest, fmt.Errorf("instance %q does not exist: a state is required to create it", id))
		return
	}
	spec := Instance{
		InstanceId: id, InstanceState: body.State, Region: body.Region,
		Zone: body.Zone, InstanceType: body.InstanceType,
		RestrictState: body.RestrictState, IsolatedSource: body.IsolatedSource,
	}
	if body.Name != nil {
		spec.InstanceName = *body.Name
	}
	if body.Tags != nil {
		spec.Tags = append([]Tag{}, (*body.Tags)...)
	}
	var in Instance
	var err error
	if body.Operation != "" {
		in, err = s.CreateOperated(spec, body.update())
	} else {
		u := body.update()
		if err = u.validate(); err == nil {
			in, err = s.create(spec, nil)
		}
	}
	if err != nil {
		adminError(w, statusOf(err), err)
		return
	}
	s.log.Info("admin create", slog.String("instanceId", clip(id)), slog.String("state", clip(body.State)),
		slog.String("region", in.Region), slog.String("operation", clip(body.Operation)))
	adminJSON(w, http.StatusCreated, toAdminInstance(in))
}

func statusOf(err error) int {
	switch {
	case errors.Is(err, ErrNoInstance):
		return http.StatusNotFound
	case errors.Is(err, ErrInstanceExists):
		return http.StatusConflict
	}
	return http.StatusBadRequest
}

func (s *Server) adminDeleteInstance(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if err := s.Release(id); err != nil {
		adminError(w, statusOf(err), err)
		return
	}
	s.log.Info("admin release", slog.String("instanceId", clip(id)))
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) adminAddFault(w http.ResponseWriter, r *http.Request) {
	var f Fault
	if err := decodeStrict(w, r, &f); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if err := f.Validate(); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	id := s.AddFault(f)
	s.log.Info("admin add fault", slog.Int("faultId", id), slog.String("kind", string(f.Kind)))
	adminJSON(w, http.StatusCreated, map[string]int{"id": id})
}

func (s *Server) adminRemoveFault(w http.ResponseWriter, r *http.Request) {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		adminError(w, http.StatusBadRequest, fmt.Errorf("fault id %q: want an integer", r.PathValue("id")))
		return
	}
	s.RemoveFault(id)
	w.WriteHeader(http.StatusNoContent)
}

type clockBody struct {
	Offset Duration  `json:"offset"`
	Now    time.Time `json:"now,omitzero"`
}

func (s *Server) adminGetClock(w http.ResponseWriter, _ *http.Request) {
	adminJSON(w, http.StatusOK, clockBody{Offset: Duration(s.ClockOffset()), Now: s.now().UTC()})
}

func (s *Server) adminSetClock(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Offset *Duration `json:"offset"`
	}
	if err := decodeStrict(w, r, &body); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if body.Offset == nil {
		adminError(w, http.StatusBadRequest, errors.New(`"offset" is required, e.g. {"offset":"10m"}`))
		return
	}
	s.SetClockOffset(time.Duration(*body.Offset))
	s.log.Info("admin set clock offset", slog.Duration("offset", time.Duration(*body.Offset)))
	adminJSON(w, http.StatusOK, clockBody{Offset: *body.Offset, Now: s.now().UTC()})
}

// churnBody is the churn engine's rate: lifecycle operations started per
// second across the fleet.
type churnBody struct {
	Rate float64 `json:"rate"`
}

func (s *Server) adminSetChurn(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Rate *float64 `json:"rate"`
	}
	if err := decodeStrict(w, r, &body); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	if body.Rate == nil {
		adminError(w, http.StatusBadRequest, errors.New(`"rate" is required, e.g. {"rate":2.5}`))
		return
	}
	if err := s.SetChurn(*body.Rate); err != nil {
		adminError(w, http.StatusBadRequest, err)
		return
	}
	s.log.Info("admin set churn", slog.Float64("rate", *body.Rate))
	adminJSON(w, http.StatusOK, churnBody{Rate: *body.Rate})
}
