package watcher

// The enrichment part of the event body: data.instance and data.operation,
// additive to the v1 types (a subscriber that ignores them is unaffected).

// InstanceData is data.instance as subscribers decode it.
type InstanceData struct {
	Name           string            `json:"name"`
	Zone           string            `json:"zone"`
	InstanceType   string            `json:"instanceType"`
	PrivateIPs     []string          `json:"privateIps"`
	PublicIPs      []string          `json:"publicIps"`
	Tags           map[string]string `json:"tags"`
	ChargeType     string            `json:"chargeType"`
	CreatedTime    string            `json:"createdTime"`
	ExpiredTime    string            `json:"expiredTime,omitempty"`
	RestrictState  string            `json:"restrictState"`
	IsolatedSource string            `json:"isolatedSource"`
	Truncated      bool              `json:"truncated,omitempty"`
}

// OperationData is data.operation as subscribers decode it.
type OperationData struct {
	Name      string `json:"name"`
	State     string `json:"state"`
	RequestID string `json:"requestId"`
	Error     string `json:"error,omitempty"`
	// Actor is who made the request (CloudAudit), when known.
	Actor *ActorData `json:"actor,omitempty"`
}

// ActorData is data.operation.actor as subscribers decode it.
type ActorData struct {
	Username  string `json:"username"`
	SourceIP  string `json:"sourceIp"`
	EventName string `json:"eventName"`
}

// instanceData converts in for encoding/json (lists never null).
func instanceData(in *Instance) *InstanceData {
	if in == nil {
		return nil
	}
	d := &InstanceData{
		Name: in.Name, Zone: in.Zone, InstanceType: in.InstanceType,
		PrivateIPs: append([]string{}, in.PrivateIPs...), PublicIPs: append([]string{}, in.PublicIPs...),
		Tags:       make(map[string]string, len(in.Tags)),
		ChargeType: in.ChargeType, CreatedTime: in.CreatedTime, ExpiredTime: in.ExpiredTime,
		RestrictState: in.RestrictState, IsolatedSource: in.IsolatedSource, Truncated: in.Truncated,
	}
	for _, t := range in.Tags {
		if _, dup := d.Tags[t.Key]; !dup {
			d.Tags[t.Key] = t.Value
		}
	}
	return d
}

// instance converts decoded data back, tags sorted by key.
func (d *InstanceData) instance() *Instance {
	if d == nil {
		return nil
	}
	in := &Instance{
		Name: d.Name, Zone: d.Zone, InstanceType: d.InstanceType, PrivateIPs: d.PrivateIPs, PublicIPs: d.PublicIPs,
		ChargeType: d.ChargeType, CreatedTime: d.CreatedTime, ExpiredTime: d.ExpiredTime,
		RestrictState: d.RestrictState, IsolatedSource: d.IsolatedSource, Truncated: d.Truncated,
	}
	for _, k := range sortedKeys(d.Tags) {
		in.Tags = append(in.Tags, Tag{Key: k, Value: d.Tags[k]})
	}
	return in
}

// appendInstance appends data.instance's JSON object, exactly as
// encoding/json encodes instanceData(in). Tags must be sorted by key with
// unique keys (Bound makes them so), as encoding/json sorts a map's keys.
func appendInstance(b []byte, in *Instance) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, in.Name)
	b = append(b, `,"zone":`...)
	b = appendJSONString(b, in.Zone)
	b = append(b, `,"instanceType":`...)
	b = appendJSONString(b, in.InstanceType)
	b = append(b, `,"privateIps":`...)
	b = appendStrings(b, in.PrivateIPs)
	b = append(b, `,"publicIps":`...)
	b = appendStrings(b, in.PublicIPs)
	b = append(b, `,"tags":{`...)
	for i, t := range in.Tags {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, t.Key)
		b = append(b, ':')
		b = appendJSONString(b, t.Value)
	}
	b = append(b, `},"chargeType":`...)
	b = appendJSONString(b, in.ChargeType)
	b = append(b, `,"createdTime":`...)
	b = appendJSONString(b, in.CreatedTime)
	if in.ExpiredTime != "" {
		b = append(b, `,"expiredTime":`...)
		b = appendJSONString(b, in.ExpiredTime)
	}
	b = append(b, `,"restrictState":`...)
	b = appendJSONString(b, in.RestrictState)
	b = append(b, `,"isolatedSource":`...)
	b = appendJSONString(b, in.IsolatedSource)
	if in.Truncated {
		b = append(b, `,"truncated":true`...)
	}
	return append(b, '}')
}

// appendOperation appends data.operation's JSON object without an actor.
func appendOperation(b []byte, op *Operation) []byte { return appendOperationActor(b, op, nil) }

// appendOperationActor appends data.operation's JSON object, with
// data.operation.actor when a is not nil.
func appendOperationActor(b []byte, op *Operation, a *Actor) []byte {
	b = append(b, `{"name":`...)
	b = appendJSONString(b, op.Name)
	b = append(b, `,"state":`...)
	b = appendJSONString(b, op.State)
	b = append(b, `,"requestId":`...)
	b = appendJSONString(b, op.RequestID)
	if op.Error != "" {
		b = append(b, `,"error":`...)
		b = appendJSONString(b, op.Error)
	}
	if a != nil {
		b = append(b, `,"actor":`...)
		b = appendActor(b, a)
	}
	return append(b, '}')
}

// appendActor appends data.operation.actor's JSON object.
func appendActor(b []byte, a *Actor) []byte {
	b = append(b, `{"username":`...)
	b = appendJSONString(b, a.Username)
	b = append(b, `,"sourceIp":`...)
	b = appendJSONString(b, a.SourceIP)
	b = append(b, `,"eventName":`...)
	b = appendJSONString(b, a.EventName)
	return append(b, '}')
}

func appendStrings(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, s := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONString(b, s)
	}
	return append(b, ']')
}
